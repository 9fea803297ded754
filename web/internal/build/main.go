// Command build bundles the browser code of package web with esbuild (run by go generate ./web, from
// the web directory, after npm ci): src/consent.js → dist/consent.js and src/app/main.js → dist/app.js
// with its style sheets (Leaflet's, uPlot's and the app's own) → dist/app.css, served by the node;
// src/playground/main.js → dist/playground.js and dist/playground.css, the GraphQL playground (GraphiQL,
// React); src/testwallet.js → testdata/testwallet.js, a browser wallet the tests inject, and src/testtlog.js →
// testdata/tlog.js, the log checks and the entry decoder, which tests run against Go's and the node's, and
// src/testcredential.js → testdata/credential.js, the credential checks, which tests compare with Go's.
// The output is minified, without source maps or timestamps, so that it is byte for byte reproducible
// and CI can check that the committed bundle is current. It imports nothing of this module.
package main

import (
	"fmt"
	"os"

	"github.com/evanw/esbuild/pkg/api"
)

func main() {
	for _, b := range []struct {
		in, out string
		define  map[string]string
	}{
		{"src/consent.js", "dist/consent.js", nil},
		{"src/testwallet.js", "testdata/testwallet.js", nil},
		{"src/app/main.js", "dist/app.js", nil},
		{"src/testtlog.js", "testdata/tlog.js", nil},
		{"src/testcredential.js", "testdata/credential.js", nil},
		// React's production build.
		{"src/playground/main.js", "dist/playground.js", map[string]string{"process.env.NODE_ENV": `"production"`}},
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
			// Leaflet's style sheet refers to a few small images: inlined, so nothing else is served.
			// The playground's example queries are .graphql files.
			Loader:   map[string]api.Loader{".png": api.LoaderDataURL, ".svg": api.LoaderDataURL, ".graphql": api.LoaderText},
			Define:   b.define,
			LogLevel: api.LogLevelWarning,
		})
		if len(res.Errors) > 0 {
			for _, e := range res.Errors {
				fmt.Fprintln(os.Stderr, "build:", e.Text)
			}
			os.Exit(1)
		}
	}
}
