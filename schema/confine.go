package schema

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime/debug"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
	"cuelang.org/go/mod/modfile"
	"cuelang.org/go/mod/module"
)

// ModuleFile and LocalModuleFile are where a CUE module declares its path and its
// dependencies; a repository's must declare none.
const (
	ModuleFile      = "cue.mod/module.cue"
	LocalModuleFile = "cue.mod/local-module.cue"
)

// errNoRegistry is what noRegistry answers every request with.
var errNoRegistry = errors.New("module registries are disabled: Circle loads CUE only from the repository")

// noRegistry is the module registry CUE's loader is given: it refuses every request
// without making one. Checks before the loader runs report a dependency at its line; this is
// what makes the guarantee hold when a check misses a spelling, since the loader then asks
// this registry and never one made from CUE_REGISTRY or the public default.
type noRegistry struct{}

// ModFile refuses.
func (noRegistry) ModFile(_ context.Context, mv module.Version) (*modfile.File, error) {
	return nil, fmt.Errorf("module %s: %w", mv, errNoRegistry)
}

// Fetch refuses.
func (noRegistry) Fetch(_ context.Context, mv module.Version) (module.SourceLoc, error) {
	return module.SourceLoc{}, fmt.Errorf("module %s: %w", mv, errNoRegistry)
}

// ModuleVersions refuses.
func (noRegistry) ModuleVersions(_ context.Context, mpath string) ([]string, error) {
	return nil, fmt.Errorf("module %s: %w", mpath, errNoRegistry)
}

// checkModule reads the repository's CUE module files, if any, and returns the module's
// path (without its major version) and a problem for each dependency they declare: a
// dependency can only come from a registry.
func checkModule(fsys fs.FS) (string, Issues) {
	var module string
	var issues Issues
	for _, name := range []string{ModuleFile, LocalModuleFile} {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				issues = append(issues, Issue{File: name, Message: fmt.Sprintf("read: %v", err)})
			}
			continue
		}
		f, err := parser.ParseFile(name, data)
		if err != nil {
			issues = append(issues, parseIssues(name, err)...)
			continue
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.Field)
			if !ok {
				continue
			}
			label, _, err := ast.LabelName(fd.Label)
			if err != nil {
				continue
			}
			switch label {
			case "module":
				if lit, ok := fd.Value.(*ast.BasicLit); ok && name == ModuleFile {
					if p, err := literal.Unquote(lit.Value); err == nil {
						module = ast.ParseImportPath(p).Path
					}
				}
			case "deps":
				if st, ok := fd.Value.(*ast.StructLit); ok && len(st.Elts) == 0 {
					continue // deps: {} asks for nothing
				}
				issues = append(issues, at(fd.Pos().Position(), "deps",
					"CUE module dependencies are not allowed: they come from a module registry, and Circle reads CUE only from the repository (vendor the package into the repository's own module instead)"))
			}
		}
	}
	return module, issues
}

// checkImports returns a problem for each import, in the CUE files the loader may read for
// the package in dir, that is neither the standard library nor in module (the repository's
// own CUE module, "" when it has none). The files are a superset of the loader's: every
// .cue file of dir and of its parent folders (CUE adds a parent's files of the same
// package), then the same for each of the module's own packages imported, transitively.
func checkImports(fsys fs.FS, dir, module string) Issues {
	var issues Issues
	seenDir, seenFile := map[string]bool{}, map[string]bool{}
	queue := []string{dir}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seenDir[d] {
			continue
		}
		seenDir[d] = true
		for p := d; ; p = path.Dir(p) {
			entries, _ := fs.ReadDir(fsys, p)
			for _, e := range entries {
				name := path.Join(p, e.Name())
				if e.IsDir() || path.Ext(name) != ".cue" || seenFile[name] {
					continue
				}
				seenFile[name] = true
				data, err := fs.ReadFile(fsys, name)
				if err != nil {
					issues = append(issues, Issue{File: name, Message: fmt.Sprintf("read: %v", err)})
					continue
				}
				f, err := parser.ParseFile(name, data, parser.ImportsOnly)
				if err != nil {
					continue // the loader reports syntax errors at their place
				}
				issues = append(issues, fileImportIssues(f, module)...)
				for spec := range f.ImportSpecs() {
					if ip, err := literal.Unquote(spec.Path.Value); err == nil && module != "" {
						if rel, ok := strings.CutPrefix(ast.ParseImportPath(ip).Path, module+"/"); ok {
							queue = append(queue, path.Clean(rel))
						}
					}
				}
			}
			if p == "." || p == "/" {
				break
			}
		}
	}
	return issues
}

func fileImportIssues(f *ast.File, module string) Issues {
	var issues Issues
	for spec := range f.ImportSpecs() {
		p, err := literal.Unquote(spec.Path.Value)
		if err != nil {
			continue
		}
		if msg := importProblem(p, module); msg != "" {
			issues = append(issues, at(spec.Path.Pos().Position(), "", msg))
		}
	}
	return issues
}

// importProblem says what is wrong with importing p from a repository whose module is
// module, or "" when nothing is.
func importProblem(p, module string) string {
	ip := ast.ParseImportPath(p).Path
	first, _, _ := strings.Cut(ip, "/")
	switch {
	case !strings.Contains(first, "."):
		return "" // CUE's standard library, built into the binary
	case module != "" && (ip == module || strings.HasPrefix(ip, module+"/")):
		return ""
	case module == "":
		return fmt.Sprintf("import %q is not allowed: only CUE's standard library can be imported by a repository without a cue.mod/module.cue, and Circle never fetches a module", p)
	}
	return fmt.Sprintf("import %q is not allowed: it is outside the repository's CUE module %q, and Circle never fetches a module", p, module)
}

// loaded walks the instances the loader gathered for inst (parent folders' files of the
// same package, the module's own imported packages): it checks their files' imports, a
// second time after checkImports, and marks every file as the schema's own, so an issue
// prefers the data's position to theirs.
func (s *Schema) loaded(inst *build.Instance, module string) Issues {
	var issues Issues
	seen := map[*build.Instance]bool{}
	var walk func(*build.Instance)
	walk = func(i *build.Instance) {
		if i == nil || seen[i] {
			return
		}
		seen[i] = true
		for _, f := range i.Files {
			s.files[f.Filename] = true
			issues = merge(issues, fileImportIssues(f, module))
		}
		for _, d := range i.Imports {
			walk(d)
		}
	}
	walk(inst)
	sortIssues(issues)
	return issues
}

func at(pos token.Position, p, msg string) Issue {
	return Issue{File: pos.Filename, Line: pos.Line, Column: pos.Column, Path: p, Message: msg}
}

// parseIssues turns a parser's error into issues at their positions.
func parseIssues(name string, err error) Issues {
	var out Issues
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		is := Issue{File: name, Message: fmt.Sprintf(format, args...)}
		if ps := cueerrors.Positions(e); len(ps) > 0 {
			is = at(ps[0].Position(), "", is.Message)
		}
		out = append(out, is)
	}
	return out
}

// abandoned counts evaluations that exceeded their limit and still run.
var abandoned atomic.Int64

// Abandoned is the number of CUE evaluations that exceeded their limit and are still
// running in the background (see WithEvalLimit): a daemon can export it, and a process
// where it keeps growing is one to restart.
func Abandoned() int { return int(abandoned.Load()) }

// bounded runs f, CUE work on s's context, within s.limit.
//
// CUE's API has no way to stop an evaluation: no context, no step budget, no interrupt
// (v0.17.1). So f runs on its own goroutine and, when the limit passes first, bounded
// returns an issue naming the schema's files while f is abandoned: it keeps its CPU and
// memory until it ends by itself, or the process does. The Schema is marked broken, since
// that goroutine still uses its cue.Context, and every later call returns the same issue.
// Memory is not bounded: Go cannot cap one goroutine's heap, and the only real bound on both
// is a process of its own, which Circle does not spawn.
//
// The caller holds s.mu.
func (s *Schema) bounded(what string, f func()) Issues {
	if s.broken != nil {
		return s.broken
	}
	if s.limit < 0 {
		f()
		return nil
	}
	done := make(chan any, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Sprintf("%v\n\n%s", p, debug.Stack())
				return
			}
			done <- nil
		}()
		f()
	}()
	t := time.NewTimer(s.limit)
	defer t.Stop()
	select {
	case p := <-done:
		if p != nil {
			panic(p) // as if f had run here; its stack is in the message
		}
		return nil
	case <-t.C:
		abandoned.Add(1)
		go func() {
			<-done
			abandoned.Add(-1)
		}()
		s.broken = Issues{s.limitIssue(what)}
		return s.broken
	}
}

// limitIssue names the schema's own files: the evaluation may be slow because of the
// data, but only CUE can make it so, and config layers in CUE are listed by the caller.
func (s *Schema) limitIssue(what string) Issue {
	files := s.own
	if len(files) == 0 {
		for f := range s.files {
			files = append(files, f)
		}
		sort.Strings(files)
	}
	is := Issue{Message: fmt.Sprintf("schema evaluation exceeded %s while %s; it was abandoned", s.limit, what)}
	if len(files) > 0 {
		is.File = files[0]
		if len(files) > 1 {
			is.Message += " (the schema is " + strings.Join(files, ", ") + ")"
		}
	}
	return is
}
