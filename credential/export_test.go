package credential

// Reissue signs claims and evidence as the issuer would, whatever they say: the tests forge credentials
// that carry a valid issuer signature over tampered evidence, which the evidence checks must refuse.
func Reissue(is *Issuer, c *Claims, ev *Evidence) (string, error) { return is.encode(c, ev) }

// EvidenceOf returns the disclosed evidence of a credential.
func EvidenceOf(sdjwt string) (*Evidence, error) {
	_, ds, _, err := split(sdjwt)
	if err != nil {
		return nil, err
	}
	for _, enc := range ds {
		d, err := parseDisclosure(enc)
		if err != nil {
			return nil, err
		}
		if d.Name == "evidence" {
			return decodeEvidence(d.Value)
		}
	}
	return nil, nil
}
