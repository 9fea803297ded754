// Command build bundles the browser code of package web with esbuild (run by go generate ./web, from
// the web directory, after npm ci): src/consent.js → dist/consent.js, served by the node, and
// src/testwallet.js → testdata/testwallet.js, a browser wallet the tests inject. The output is minified,
// without source maps or timestamps, so that it is byte for byte reproducible and CI can check that the
// committed bundle is current.
package main

import (
	"fmt"
	"os"

	"github.com/evanw/esbuild/pkg/api"
)

func main() {
	for _, b := range []struct{ in, out, format string }{
		{"src/consent.js", "dist/consent.js", "iife"},
		{"src/testwallet.js", "testdata/testwallet.js", "iife"},
	} {
		res := api.Build(api.BuildOptions{
			EntryPoints:       []string{b.in},
			Outfile:           b.out,
			Bundle:            true,
			MinifyWhitespace:  true,
			MinifyIdentifiers: true,
			MinifySyntax:      true,
			Format:            api.FormatIIFE,
			Target:            api.ES2020,
			Platform:          api.PlatformBrowser,
			LegalComments:     api.LegalCommentsEndOfFile,
			Charset:           api.CharsetUTF8,
			Write:             true,
			LogLevel:          api.LogLevelWarning,
		})
		if len(res.Errors) > 0 {
			for _, e := range res.Errors {
				fmt.Fprintln(os.Stderr, "build:", e.Text)
			}
			os.Exit(1)
		}
	}
}
