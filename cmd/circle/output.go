package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/circlecore/circle/termsafe"
)

// outputFlag is the kubectl-style -o flag: text for people, json or yaml for machines.
type outputFlag struct{ format string }

func (o *outputFlag) register(cmd *cobra.Command) {
	enumVarP(cmd.Flags(), &o.format, "output", "o", "text", "output format", []string{"text", "json", "yaml"}, "output format: text, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
}

// print writes v in the chosen format; text is produced by the caller's function. Text is
// for a terminal and holds what files and servers said (problems, license fields, object
// keys): its control characters are escaped (termsafe), line breaks and tabs kept. JSON
// and YAML escape them already.
func (o *outputFlag) print(w io.Writer, v any, text func() string) error {
	switch o.format {
	case "text", "":
		_, err := io.WriteString(w, termsafe.Text(text()))
		return err
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	default:
		return fmt.Errorf("unknown output format %q: use text, json or yaml", o.format)
	}
}
