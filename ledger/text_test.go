package ledger

import "testing"

func TestAdmitRefusesTextThatHidesOrReordersWhatIsRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		tx   Tx
		want Code // "" when admitted
	}{
		{"plain names are admitted", Tx{Make: "Volvo", Model: "XC40 Recharge", Name: "Försäkring AB"}, ""},
		{"right-to-left script is admitted", Tx{Name: "تأمين السيارات", Purpose: "ביטוח רכב"}, ""},
		{"an emoji is admitted", Tx{Name: "Fleet 🚗"}, ""},
		{"a right-to-left override in the make", Tx{Make: "Vol\u202Eovl"}, CodeInvisibleText},
		{"a left-to-right embedding in the model", Tx{Model: "\u202AXC40"}, CodeInvisibleText},
		{"a pop directional formatting in the name", Tx{Name: "App\u202C"}, CodeInvisibleText},
		{"a first strong isolate in the purpose", Tx{Purpose: "Insurance \u2068quote"}, CodeInvisibleText},
		{"a pop directional isolate in the name", Tx{Name: "App\u2069"}, CodeInvisibleText},
		{"a zero-width space in the name", Tx{Name: "Pay\u200BPal"}, CodeInvisibleText},
		{"a zero-width joiner in the model", Tx{Model: "XC\u200D40"}, CodeInvisibleText},
		{"a right-to-left mark in the make", Tx{Make: "Volvo\u200F"}, CodeInvisibleText},
		{"a byte order mark in the name", Tx{Name: "\uFEFFApp"}, CodeInvisibleText},
		{"a tag character in the purpose", Tx{Purpose: "Insurance\U000E0041"}, CodeInvisibleText},
		{"the cancel tag in the name", Tx{Name: "App\U000E007F"}, CodeInvisibleText},
		{"an unassigned tag code point", Tx{Name: "App\U000E0000"}, CodeInvisibleText},
		{"a soft hyphen in the model", Tx{Model: "XC\u00AD40"}, CodeInvisibleText},
		{"an Arabic letter mark in the name", Tx{Name: "App\u061C"}, CodeInvisibleText},
		{"a word joiner in the name", Tx{Name: "App\u2060"}, CodeInvisibleText},
		{"a line separator in the purpose", Tx{Purpose: "one\u2028two"}, CodeInvisibleText},
		{"an override in a redirect URI", Tx{RedirectURIs: []string{"https://app.example/\u202Ecb"}}, CodeInvisibleText},
		{"an override in the terms URI", Tx{TermsURI: "https://app.example/\u202Eterms"}, CodeInvisibleText},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Admit(&tc.tx)
			if got := CodeOf(err); got != tc.want {
				t.Errorf("Admit = %v, want code %q", err, tc.want)
			}
		})
	}
}

func TestVisibleReplacesEveryInvisibleCharacter(t *testing.T) {
	for in, want := range map[string]string{
		"Volvo":                    "Volvo",
		"Vol\u202Eovl":             "Vol\uFFFDovl",
		"\uFEFFa\u200Bb\U000E0041": "\uFFFDa\uFFFDb\uFFFD",
		"تأمين":                    "تأمين",
	} {
		if got := Visible(in); got != want {
			t.Errorf("Visible(%+q) = %+q, want %+q", in, got, want)
		}
	}
}
