package ledger

import (
	"unicode"
)

// Invisible returns the first character of s that a reader does not see but that changes what they
// read, and whether there is one: format characters (Unicode category Cf — the bidirectional embeddings,
// overrides and isolates U+202A–U+202E and U+2066–U+2069, the zero-width characters U+200B–U+200F, the
// byte order mark U+FEFF, soft hyphens, the tag characters U+E0000–U+E007F), line and paragraph
// separators, and unassigned tag code points. A right-to-left override in an app's name can make a
// consent screen read as something else than what was signed.
func Invisible(s string) (rune, bool) {
	for _, r := range s {
		if unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) || (r >= 0xE0000 && r <= 0xE007F) {
			return r, true
		}
	}
	return 0, false
}

// Admit checks the rules a transaction must meet to be admitted to the log, beyond those State.Apply
// checks: no text field holds an Invisible character (CodeInvisibleText). The sequencer calls it before
// Apply; replay does not, so that entries admitted before the rule existed still replay to the same
// state.
func Admit(tx *Tx) error {
	texts := []struct {
		field string
		value string
	}{{"make", tx.Make}, {"model", tx.Model}, {"kind", tx.Kind}, {"name", tx.Name}, {"purpose", tx.Purpose},
		{"termsUri", tx.TermsURI}}
	for _, u := range tx.RedirectURIs {
		texts = append(texts, struct{ field, value string }{"redirectUris", u})
	}
	for _, p := range tx.Permissions {
		texts = append(texts, struct{ field, value string }{"permissions", p})
	}
	for _, t := range texts {
		if r, ok := Invisible(t.value); ok {
			return errorf(CodeInvisibleText, "%s holds the invisible character %U", t.field, r)
		}
	}
	return nil
}

// Visible returns s with every Invisible character replaced by U+FFFD, for showing text admitted before
// Admit refused it.
func Visible(s string) string {
	if _, ok := Invisible(s); !ok {
		return s
	}
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if _, bad := Invisible(string(r)); bad {
			r = unicode.ReplacementChar
		}
		out = append(out, r)
	}
	return string(out)
}
