// Command gotar reads and writes tar archives with Go's archive/tar, the reader containerd
// applies layers with and the writer Docker and buildkit use. It is the differential oracle of
// tests/unpack/test_differential.py (standard library only: it builds offline).
//
//	gotar list ARCHIVE   one JSON object per entry, then {"end": true} or {"error": "..."}
//	gotar write FORMAT   reads a JSON list of entries on stdin, writes the archive to stdout
//
// Names, link targets, xattr values and data travel as hex: they may hold any byte.
package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

type entry struct {
	Name     string            `json:"name"`
	Type     int               `json:"type"`
	Size     int64             `json:"size"`
	Mode     int64             `json:"mode"`
	UID      int               `json:"uid"`
	GID      int               `json:"gid"`
	MtimeS   int64             `json:"mtime_s"`
	MtimeNs  int64             `json:"mtime_ns"`
	Link     string            `json:"link"`
	DevMajor int64             `json:"devmajor"`
	DevMinor int64             `json:"devminor"`
	Xattrs   map[string]string `json:"xattrs"`
	SHA256   string            `json:"sha256,omitempty"`
	Data     string            `json:"data,omitempty"`
}

const xattrPrefix = "SCHILY.xattr."

func unhex(s string) string {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func list(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	out := json.NewEncoder(os.Stdout)
	tr := tar.NewReader(bufio.NewReader(f))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out.Encode(map[string]bool{"end": true})
		}
		if err != nil {
			return out.Encode(map[string]string{"error": err.Error()})
		}
		e := entry{
			Name: hex.EncodeToString([]byte(hdr.Name)), Type: int(hdr.Typeflag), Size: hdr.Size,
			Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid,
			MtimeS: hdr.ModTime.Unix(), MtimeNs: int64(hdr.ModTime.Nanosecond()),
			Link: hex.EncodeToString([]byte(hdr.Linkname)), DevMajor: hdr.Devmajor,
			DevMinor: hdr.Devminor, Xattrs: map[string]string{},
		}
		for k, v := range hdr.PAXRecords {
			if strings.HasPrefix(k, xattrPrefix) {
				e.Xattrs[hex.EncodeToString([]byte(k[len(xattrPrefix):]))] = hex.EncodeToString([]byte(v))
			}
		}
		// Contents past 1 GiB (Go's 60 GB sparse test files) are not hashed: Next skips them.
		if hdr.Size <= 1<<30 {
			h := sha256.New()
			if _, err := io.Copy(h, tr); err != nil {
				return out.Encode(map[string]string{"error": err.Error()})
			}
			e.SHA256 = hex.EncodeToString(h.Sum(nil))
		}
		if err := out.Encode(e); err != nil {
			return err
		}
	}
}

func write(format string) error {
	var entries []entry
	if err := json.NewDecoder(os.Stdin).Decode(&entries); err != nil {
		return err
	}
	formats := map[string]tar.Format{"pax": tar.FormatPAX, "gnu": tar.FormatGNU, "ustar": tar.FormatUSTAR}
	w := bufio.NewWriter(os.Stdout)
	tw := tar.NewWriter(w)
	for _, e := range entries {
		data := unhex(e.Data)
		hdr := &tar.Header{
			Name: unhex(e.Name), Typeflag: byte(e.Type), Mode: e.Mode, Uid: e.UID, Gid: e.GID,
			ModTime: time.Unix(e.MtimeS, e.MtimeNs), Linkname: unhex(e.Link),
			Devmajor: e.DevMajor, Devminor: e.DevMinor, Format: formats[format],
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(data))
		}
		if len(e.Xattrs) > 0 {
			hdr.PAXRecords = map[string]string{}
			for k, v := range e.Xattrs {
				hdr.PAXRecords[xattrPrefix+unhex(k)] = unhex(v)
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%q: %w", hdr.Name, err)
		}
		if _, err := tw.Write([]byte(data)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return w.Flush()
}

func main() {
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "list":
		err = list(os.Args[2])
	case len(os.Args) == 3 && os.Args[1] == "write":
		err = write(os.Args[2])
	default:
		err = fmt.Errorf("usage: gotar list ARCHIVE | gotar write pax|gnu|ustar")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotar:", err)
		os.Exit(1)
	}
}
