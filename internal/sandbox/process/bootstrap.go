//go:build linux

package process

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
)

// bootstraps are Gust's runtime clients for Node.js and Python handlers,
// written with each language's standard library only.
//
//go:embed bootstrap/bootstrap.js bootstrap/bootstrap.py
var bootstraps embed.FS

// writeBootstraps writes the embedded bootstraps into dir (0755, readable
// by the functions' user).
func writeBootstraps(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("process: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("process: %w", err)
	}
	for _, name := range []string{"bootstrap.js", "bootstrap.py"} {
		b, err := bootstraps.ReadFile("bootstrap/" + name)
		if err != nil {
			return fmt.Errorf("process: %w", err)
		}
		dst := filepath.Join(dir, name)
		tmp := dst + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return fmt.Errorf("process: %w", err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			return fmt.Errorf("process: %w", err)
		}
	}
	return nil
}
