package netns

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// InNamespace runs f on a thread switched into the named network
// namespace; sockets f opens stay there and can be used from any goroutine
// afterwards. The thread is switched back before it is released. It must
// be: the runtime cannot discard the process's main thread, so a locked
// goroutine that ended there would leave the whole process looking as if it
// lived in ns — and the lab's cleanup, which kills every process in an
// instance's namespace, would kill the test binary.
func InNamespace(ns string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("enter netns %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		} // else: stays locked, and the runtime discards the thread with the goroutine
		done <- ferr
	}()
	return <-done
}
