package mount

import (
	"log"
	"os"
	"runtime"
	"runtime/pprof"
)

// profileEnv names a file prefix for profiles of a serving daemon, for
// performance work: LAYOUTFS_PROFILE=/tmp/lfs makes the server write a CPU
// profile to /tmp/lfs.cpu from mount to unmount, and a heap profile
// (what is live, after a collection) to /tmp/lfs.heap at unmount; read
// them with go tool pprof. The daemon's environment is the mount
// command's. Not a supported interface.
const profileEnv = "LAYOUTFS_PROFILE"

// startProfile starts the profiles asked for, and returns what stops them
// (nil if none were).
func startProfile(logger *log.Logger) func() {
	prefix := os.Getenv(profileEnv)
	if prefix == "" {
		return nil
	}
	f, err := os.Create(prefix + ".cpu")
	if err != nil {
		logger.Printf("layoutfs: %s: %v", profileEnv, err)
		return nil
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		logger.Printf("layoutfs: %s: %v", profileEnv, err)
		f.Close()
		return nil
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		h, err := os.Create(prefix + ".heap")
		if err != nil {
			logger.Printf("layoutfs: %s: %v", profileEnv, err)
			return
		}
		defer h.Close()
		runtime.GC()
		pprof.Lookup("heap").WriteTo(h, 0)
	}
}
