package registry

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"github.com/circlecore/circle/registry/osv"
	"github.com/circlecore/circle/schema"
)

// Ecosystem is the OSV ecosystem of this registry's packages: an advisory hits a package
// through an affected entry {"package": {"ecosystem": "Circle", "name": "<name>"}}.
const Ecosystem = "Circle"

// Advisory is an OSV record of the advisories folder.
type Advisory struct {
	*osv.Record
	// File is where the record was read from.
	File string
}

// loadAdvisories reads every *.json of dir (a missing dir is no advisories). Two files
// with one id are a problem: which one holds would depend on the order of reading.
func loadAdvisories(fsys fs.FS, dir string) ([]*Advisory, schema.Issues) {
	entries, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, schema.Issues{{File: dir, Message: fmt.Sprintf("read: %v", err)}}
	}
	var out []*Advisory
	var issues schema.Issues
	byID := map[string]string{}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".json" {
			continue
		}
		file := path.Join(dir, e.Name())
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			issues = append(issues, schema.Issue{File: file, Message: fmt.Sprintf("read: %v", err)})
			continue
		}
		rec, err := osv.Parse(data)
		if err != nil {
			issues = append(issues, jsonIssue(file, data, err)...)
			continue
		}
		if prev, ok := byID[rec.ID]; ok {
			issues = append(issues, schema.Issue{File: file, Path: "id", Message: fmt.Sprintf("advisory %s is also in %s", rec.ID, prev)})
			continue
		}
		byID[rec.ID] = file
		out = append(out, &Advisory{Record: rec, File: file})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, issues
}
