module github.com/layoutfs/layoutfs

go 1.26.8
