// Package atomicfile replaces files whole: a reader sees the old content or the new, never part of it, and
// after a crash the new content is on disk or the old one is. It owns only that, and imports nothing of the
// module.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces the file name with data: it writes a temporary file beside it, syncs it and renames it
// over name, creating name's directory (with dirMode) if needed. On failure no temporary file is left.
func Write(name string, data []byte, dirMode os.FileMode) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("couldn't create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("couldn't write %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("couldn't write %s: %w", name, err)
	}
	return nil
}
