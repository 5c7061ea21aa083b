package main

import (
	"reflect"
	"testing"
)

func TestFlagsFirst(t *testing.T) {
	app := newApp()
	for _, c := range []struct{ in, want []string }{
		{[]string{"layoutfs", "cat", "src.tar", "/etc/os-release", "--platform", "linux/arm64"},
			[]string{"layoutfs", "cat", "--platform", "linux/arm64", "--", "src.tar", "/etc/os-release"}},
		{[]string{"layoutfs", "ls", "src", "-l", "--ref=v1", "tags"},
			[]string{"layoutfs", "ls", "-l", "--ref=v1", "--", "src", "tags"}},
		{[]string{"layoutfs", "mount", "-f", "src", "mnt", "-o", "allow_other"},
			[]string{"layoutfs", "mount", "-f", "-o", "allow_other", "--", "src", "mnt"}},
		{[]string{"layoutfs", "cat", "--", "src", "-odd-name"},
			[]string{"layoutfs", "cat", "--", "src", "-odd-name"}},
		{[]string{"layoutfs", "nosuch", "x", "--y"}, []string{"layoutfs", "nosuch", "x", "--y"}},
		{[]string{"layoutfs", "--help"}, []string{"layoutfs", "--help"}},
	} {
		if got := flagsFirst(app, c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("flagsFirst(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
