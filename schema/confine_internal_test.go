package schema

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"cuelang.org/go/mod/module"
)

// The registry the loader is given answers every request with errNoRegistry.
func TestNoRegistryRefuses(t *testing.T) {
	var r noRegistry
	mv := module.MustNewVersion("example.com/evil@v0", "v0.1.0")
	_, err1 := r.ModFile(context.Background(), mv)
	_, err2 := r.Fetch(context.Background(), mv)
	_, err3 := r.ModuleVersions(context.Background(), "example.com/evil@v0")
	for _, err := range []error{err1, err2, err3} {
		if !errors.Is(err, errNoRegistry) || !strings.Contains(err.Error(), "example.com/evil") {
			t.Errorf("err = %v", err)
		}
	}
}

// A panic inside a bounded evaluation reaches the caller, with the stack it had.
func TestBoundedPanics(t *testing.T) {
	s := Builtin()
	defer func() {
		p := recover()
		if msg, _ := p.(string); !strings.Contains(msg, "boom") || !strings.Contains(msg, "TestBoundedPanics") {
			t.Errorf("recovered %v", p)
		}
	}()
	s.bounded("testing", func() { panic("boom") })
	t.Error("no panic")
}

// A module file that does not parse is a problem at its place; one whose module is not a
// string names no module.
func TestCheckModuleOddFiles(t *testing.T) {
	_, issues := checkModule(fstest.MapFS{ModuleFile: {Data: []byte("module: \"a.com/x\"\ndeps: {\n")}})
	if len(issues) == 0 || issues[0].File != ModuleFile || issues[0].Line == 0 {
		t.Errorf("issues = %v", issues)
	}
	mod, issues := checkModule(fstest.MapFS{ModuleFile: {Data: []byte("module: x\nx: \"a.com/x\"\nlanguage: version: \"v0.12.0\"\n")}})
	if mod != "" || issues != nil {
		t.Errorf("module %q, issues %v", mod, issues)
	}
	if got := unquote(`"a"`) + unquote("b"); got != "ab" {
		t.Errorf("unquote = %q", got)
	}
}
