package main

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

//go:embed starter
var starter embed.FS

func newInitCmd(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a starter countersign.yaml and policies/ into the current directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fs.WalkDir(starter, "starter", func(path string, d fs.DirEntry, err error) error {
				if err != nil || path == "starter" {
					return err
				}
				rel, _ := filepath.Rel("starter", path)
				dst := filepath.Join(e.cwd, rel)
				fi, err := os.Lstat(dst)
				switch {
				case err == nil && fi.Mode()&fs.ModeSymlink != 0:
					// A repository can ship countersign.yaml -> ~/.bashrc:
					// init writes only what it finds or creates itself.
					return fmt.Errorf("%s is a symbolic link; init does not write through links: remove it, or run init in another directory", rel)
				case err != nil && !errors.Is(err, fs.ErrNotExist):
					return err
				}
				if d.IsDir() {
					if err == nil && !fi.IsDir() {
						return fmt.Errorf("%s exists and is not a directory", rel)
					}
					return os.MkdirAll(dst, 0o755)
				}
				if err == nil && !fi.Mode().IsRegular() {
					return fmt.Errorf("%s exists and is not a regular file", rel)
				}
				if err == nil && !force {
					fmt.Fprintf(e.stdout, "kept     %s (exists; --force overwrites)\n", rel)
					return nil
				}
				b, err := starter.ReadFile(path)
				if err != nil {
					return err
				}
				// The configuration may come to hold secrets (a Slack
				// token): only its owner reads it.
				mode := fs.FileMode(0o644)
				if rel == "countersign.yaml" {
					mode = 0o600
				}
				if err := writeReplacing(dst, b, mode); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "wrote    %s\n", rel)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	return cmd
}

// writeReplacing writes b to a new file beside dst and renames it over dst:
// the new file is created exclusively (never through a link someone placed
// there), and a link at dst is replaced, not followed.
func writeReplacing(dst string, b []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(dst), ".countersign-init-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}
