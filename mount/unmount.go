package mount

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// Unmount unmounts the layoutfs mount at mountpoint, whether its daemon
// is alive (it then exits) or died and left the mount behind, where every
// access fails with ENOTCONN ("Transport endpoint is not connected").
// A busy mount is detached lazily. Anything that is not a layoutfs mount
// is refused, so a typo cannot unmount something else. It never waits on
// the daemon, so it also clears a mount whose daemon hangs.
func Unmount(mountpoint string) error {
	mnt, m, ok, err := resolveMountpoint(mountpoint)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("umount %s: does not exist", mountpoint)
	}
	if err != nil {
		return fmt.Errorf("umount %s: %w", mountpoint, err)
	}
	if !ok {
		if _, err := os.Lstat(mnt); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("umount %s: does not exist", mountpoint)
		}
		return fmt.Errorf("umount %s: not mounted", mountpoint)
	}
	if m.fstype != "fuse."+fsType {
		return fmt.Errorf("umount %s: not a layoutfs mount (type %s)", mountpoint, m.fstype)
	}
	if err := unmount(mnt); err != nil {
		return fmt.Errorf("umount %s: %w", mountpoint, err)
	}
	return nil
}

// unmount tries a plain unmount, then a lazy one if the mount is busy.
func unmount(mnt string) error {
	if os.Geteuid() == 0 {
		err := syscall.Unmount(mnt, 0)
		if err == nil {
			return nil
		}
		if errors.Is(err, syscall.EBUSY) {
			return syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
		if !errors.Is(err, syscall.EPERM) {
			return err
		}
		// Root without CAP_SYS_ADMIN (a container): fusermount3 may
		// still be allowed to, as it is for the mounting user.
	}
	err := fusermount("-u", mnt)
	if err == nil {
		return nil
	}
	if derr := fusermount("-uz", mnt); derr != nil {
		return err
	}
	return nil
}

// detach unmounts lazily: the mount leaves the namespace at once and goes
// away when its last user lets go.
func detach(mnt string) error {
	if os.Geteuid() == 0 {
		err := syscall.Unmount(mnt, syscall.MNT_DETACH)
		if err == nil || !errors.Is(err, syscall.EPERM) {
			return err
		}
	}
	return fusermount("-uz", mnt)
}

// fusermount runs fusermount3 (or the older fusermount) with a flag.
func fusermount(flag, mnt string) error {
	bin, err := exec.LookPath("fusermount3")
	if err != nil {
		if bin, err = exec.LookPath("fusermount"); err != nil {
			return errors.New("fusermount3 not found: install fuse3")
		}
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, flag, mnt)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%s %s: %s", bin, flag, msg)
		}
		return fmt.Errorf("%s %s: %w", bin, flag, err)
	}
	return nil
}
