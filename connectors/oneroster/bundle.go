package oneroster

import (
	"archive/zip"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vigie-edu/vigie/connectors/internal/csvrec"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Manifest modes of a file.
const (
	modeAbsent = "absent"
	modeBulk   = "bulk"
	modeDelta  = "delta"
)

// bundle is an opened OneRoster CSV bundle: a folder or a zip archive with
// manifest.csv at its root or in its one top folder.
type bundle struct {
	path    string
	fsys    fs.FS
	closer  io.Closer         // the zip archive, or nil
	dir     string            // the folder of manifest.csv inside fsys
	files   map[string]string // lower-case file name -> name in dir
	version string
	modes   map[string]string // table -> absent, bulk, delta
}

// openBundle opens the bundle at p and reads its manifest.
func openBundle(p string) (*bundle, error) {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, protocol.WithKind(fmt.Errorf("oneroster bundle %s: no such folder or zip archive", p), protocol.ErrNotFound)
		}
		return nil, fmt.Errorf("oneroster bundle: %w", err)
	}
	b := &bundle{path: p, modes: map[string]string{}}
	if st.IsDir() {
		b.fsys = os.DirFS(p)
	} else {
		zr, err := zip.OpenReader(p)
		if err != nil {
			return nil, fmt.Errorf("oneroster bundle %s: not a folder nor a readable zip archive (%v): %w", p, err, protocol.ErrConfig)
		}
		b.fsys, b.closer = zr, zr
	}
	if err := b.locate(); err != nil {
		b.close()
		return nil, err
	}
	if err := b.readManifest(); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bundle) close() {
	if b.closer != nil {
		b.closer.Close()
	}
}

// locate finds manifest.csv at the root or in a folder one level down.
func (b *bundle) locate() error {
	list := func(dir string) (map[string]string, error) {
		ents, err := fs.ReadDir(b.fsys, dir)
		if err != nil {
			return nil, err
		}
		m := make(map[string]string, len(ents))
		for _, e := range ents {
			if !e.IsDir() {
				m[strings.ToLower(e.Name())] = e.Name()
			}
		}
		return m, nil
	}
	root, err := list(".")
	if err != nil {
		return fmt.Errorf("oneroster bundle %s: %w", b.path, err)
	}
	if _, ok := root["manifest.csv"]; ok {
		b.dir, b.files = ".", root
		return nil
	}
	ents, _ := fs.ReadDir(b.fsys, ".")
	var found []string
	var files map[string]string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sub, err := list(e.Name())
		if err != nil {
			continue
		}
		if _, ok := sub["manifest.csv"]; ok {
			found = append(found, e.Name())
			b.dir, files = e.Name(), sub
		}
	}
	switch len(found) {
	case 0:
		return fmt.Errorf("oneroster bundle %s: no manifest.csv (expected one at the top of the bundle, as OneRoster requires): %w", b.path, protocol.ErrConfig)
	case 1:
		b.files = files
		return nil
	}
	return fmt.Errorf("oneroster bundle %s: no manifest.csv at the top but several bundles below it (%s): point path at one: %w",
		b.path, strings.Join(found, ", "), protocol.ErrConfig)
}

// origin names a file of the bundle in messages and dead letters.
func (b *bundle) origin(name string) string {
	if b.dir == "." {
		return filepath.Join(b.path, name)
	}
	return filepath.Join(b.path, b.dir, name)
}

// open opens the bundle's file for table (name.csv, any case) as a CSV
// reader past any byte order mark.
func (b *bundle) open(file string) (io.ReadCloser, *csvrec.Reader, string, error) {
	name, ok := b.files[strings.ToLower(file)]
	if !ok {
		return nil, nil, "", protocol.WithKind(fmt.Errorf("oneroster bundle %s: no file %s", b.path, file), protocol.ErrNotFound)
	}
	f, err := b.fsys.Open(path.Join(b.dir, name))
	if err != nil {
		return nil, nil, "", fmt.Errorf("oneroster bundle %s: %w", b.path, err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	if bom, _ := br.Peek(3); string(bom) == "\ufeff" {
		br.Discard(3)
	}
	// By physical lines: a stray quote costs its line, not the rest of the
	// file.
	r := csvrec.NewReader(br, ',', false, 0, "")
	return f, r, b.origin(name), nil
}

// readManifest reads manifest.csv: propertyName,value rows.
func (b *bundle) readManifest() error {
	f, r, origin, err := b.open("manifest.csv")
	if err != nil {
		return err
	}
	defer f.Close()
	props := map[string]string{}
	lines := map[string]int{}
	for n := 1; ; n++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w: %w", origin, err, protocol.ErrConfig)
		}
		if r.Current().IsEmpty() {
			continue
		}
		line, _ := r.FieldPos(0)
		if len(rec) < 2 {
			return fmt.Errorf("%s:%d: expected two fields (propertyName,value), got %d: %w", origin, line, len(rec), protocol.ErrConfig)
		}
		k, v := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if n == 1 && strings.EqualFold(k, "propertyName") {
			continue
		}
		props[k], lines[k] = v, line
	}
	v, ok := props["oneroster.version"]
	switch {
	case !ok:
		return fmt.Errorf("%s: no oneroster.version property (expected 1.1 or 1.2): %w", origin, protocol.ErrConfig)
	case v == "1.1" || v == "1.1.0":
		b.version = V11
	case v == "1.2" || v == "1.2.0":
		b.version = V12
	default:
		return fmt.Errorf("%s:%d: oneroster.version is %q, expected 1.1 or 1.2: %w", origin, lines["oneroster.version"], v, protocol.ErrConfig)
	}
	for k, v := range props {
		t, ok := strings.CutPrefix(k, "file.")
		if !ok {
			continue
		}
		switch m := strings.ToLower(v); m {
		case modeAbsent, modeBulk, modeDelta:
			b.modes[t] = m
		default:
			return fmt.Errorf("%s:%d: %s is %q, expected absent, bulk or delta: %w", origin, lines[k], k, v, protocol.ErrConfig)
		}
	}
	return nil
}

// mode returns how the bundle carries table: a table the manifest does not
// list is bulk if its file is there, absent otherwise.
func (b *bundle) mode(table string) string {
	if m, ok := b.modes[table]; ok {
		return m
	}
	if _, ok := b.files[strings.ToLower(table)+".csv"]; ok {
		return modeBulk
	}
	return modeAbsent
}
