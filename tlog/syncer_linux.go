package tlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"unsafe"
)

// syncer makes the data of several files durable at once: the data files and the checkpoint slot of a
// durability round. A goroutine blocked in fdatasync(2) keeps its Go processor until the runtime's
// monitor takes it back, and with the round's three syncs in parallel on a two-core node that left no
// processor for the goroutines verifying the next transactions (docs/ledger.md, "The durability round
// without a processor"). So on Linux the syncer hands the fdatasyncs to the kernel as asynchronous I/O
// (io_submit(2) with IOCB_CMD_FDSYNC, which the kernel runs as fdatasync on a worker of its own, Linux 4.18
// and later) and waits for their completions on an eventfd(2) through the runtime's poller, where a
// waiting goroutine holds no processor. Where the kernel refuses asynchronous I/O (an older kernel, a
// seccomp filter, a file system without it), the syncer falls back to one fdatasync per file, in
// parallel goroutines, for good.
//
// The log syncs from its writer only (under wlock); the mutex keeps stop and close safe beside it.
type syncer struct {
	mu     sync.Mutex
	ctx    uintptr  // the aio_context_t; 0 when asynchronous I/O is not used
	efd    *os.File // the eventfd each completion is signalled on
	gen    uint64   // the round number, in each request's aio_data: events of an older round are skipped
	cbs    []iocb
	ptrs   []*iocb
	events []ioEvent
}

// iocb is Linux's struct iocb (include/uapi/linux/aio_abi.h) on a little-endian machine: 64 bytes.
type iocb struct {
	data      uint64 // aio_data: returned in the completion's event
	key       uint32 // set by the kernel
	rwFlags   int32
	opcode    uint16
	reqPrio   int16
	fildes    uint32
	buf       uint64
	nbytes    uint64
	offset    int64
	reserved2 uint64
	flags     uint32
	resfd     uint32 // the eventfd signalled on completion, with iocbFlagResfd
}

// ioEvent is Linux's struct io_event.
type ioEvent struct {
	data uint64 // the request's aio_data
	obj  uint64 // the request's address
	res  int64  // the result: 0, or a negated errno
	res2 int64
}

const (
	iocbCmdFdsync = 3      // IOCB_CMD_FDSYNC
	iocbFlagResfd = 1 << 0 // IOCB_FLAG_RESFD
	aioEvents     = 16     // the context's capacity: more requests than any round makes
)

// newSyncer returns a syncer that uses asynchronous I/O if the kernel allows it.
func newSyncer() *syncer {
	s := &syncer{}
	var ctx uintptr
	if _, _, e := syscall.Syscall(syscall.SYS_IO_SETUP, aioEvents, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return s
	}
	fd, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		syscall.Syscall(syscall.SYS_IO_DESTROY, ctx, 0, 0)
		return s
	}
	s.ctx, s.efd = ctx, os.NewFile(fd, "eventfd") // non-blocking: the runtime polls it
	s.events = make([]ioEvent, aioEvents)
	return s
}

// async reports whether the syncer hands its syncs to the kernel as asynchronous I/O.
func (s *syncer) async() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctx != 0
}

// syncAll fdatasyncs files and returns their errors, each wrapping the *os.PathError of fdatasync
// ("syncing entries: fdatasync …: no space left on device"), as datasyncAll does.
func (s *syncer) syncAll(files ...*os.File) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == 0 || len(files) > aioEvents {
		return datasyncAll(files...)
	}
	s.gen++
	s.cbs, s.ptrs = s.cbs[:0], s.ptrs[:0]
	for i, f := range files {
		s.cbs = append(s.cbs, iocb{data: s.gen<<8 | uint64(i), opcode: iocbCmdFdsync, fildes: uint32(f.Fd()),
			flags: iocbFlagResfd, resfd: uint32(s.efd.Fd())})
	}
	for i := range s.cbs {
		s.ptrs = append(s.ptrs, &s.cbs[i])
	}
	errs := make([]error, len(files))
	n, _, e := syscall.Syscall(syscall.SYS_IO_SUBMIT, s.ctx, uintptr(len(s.ptrs)), uintptr(unsafe.Pointer(&s.ptrs[0])))
	submitted := int(n)
	if e != 0 {
		submitted = 0
	}
	if submitted < len(files) {
		// The kernel took the requests before the one it refused (the first, when e is set). Those it
		// took are waited for; the rest are synced as if there were no asynchronous I/O, which also
		// gives their error. A kernel without IOCB_CMD_FDSYNC, or one that forbids it, is not asked again.
		if e == syscall.EINVAL || e == syscall.ENOSYS || e == syscall.EOPNOTSUPP || e == syscall.EPERM {
			defer s.stop()
		}
		errs[submitted] = datasyncAll(files[submitted:]...)
	}
	if err := s.wait(files, submitted, errs); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// wait waits for the completions of the round's first submitted requests and records their errors.
func (s *syncer) wait(files []*os.File, submitted int, errs []error) error {
	var zero syscall.Timespec
	var count [8]byte
	for done := 0; done < submitted; {
		// Each completion adds to the eventfd's counter; a read takes the count and blocks (in the
		// poller, holding no processor) while it is zero.
		if _, err := s.efd.Read(count[:]); err != nil {
			return fmt.Errorf("waiting for fdatasync: %w", err)
		}
		for done < submitted {
			n, _, e := syscall.Syscall6(syscall.SYS_IO_GETEVENTS, s.ctx, 0, uintptr(len(s.events)),
				uintptr(unsafe.Pointer(&s.events[0])), uintptr(unsafe.Pointer(&zero)), 0)
			if e == syscall.EINTR {
				continue
			}
			if e != 0 {
				return fmt.Errorf("waiting for fdatasync: io_getevents: %w", e)
			}
			if n == 0 {
				break
			}
			for _, ev := range s.events[:n] {
				if ev.data>>8 != s.gen {
					continue // a late event of an earlier round that failed while waiting
				}
				i := int(ev.data & 0xff)
				if ev.res < 0 {
					errs[i] = fmt.Errorf("syncing %s: %w", filepath.Base(files[i].Name()),
						&os.PathError{Op: "fdatasync", Path: files[i].Name(), Err: syscall.Errno(-ev.res)})
				}
				done++
			}
		}
	}
	return nil
}

// stop gives up asynchronous I/O: the syncer syncs with fdatasync from now on. Called with mu held.
func (s *syncer) stop() {
	if s.ctx == 0 {
		return
	}
	syscall.Syscall(syscall.SYS_IO_DESTROY, s.ctx, 0, 0)
	s.efd.Close()
	s.ctx, s.efd = 0, nil
}

// close releases the syncer's kernel resources.
func (s *syncer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
}
