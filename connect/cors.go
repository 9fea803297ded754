package connect

import "net/http"

// CORS lets web pages of any origin call next (RFC 6454 / Fetch CORS), for the endpoints a browser-based
// public client calls itself: discovery, the key set, token, userinfo and revocation. They take explicit
// credentials only (a code and verifier, a bearer token, a client assertion), never cookies, so any origin
// may read their answers. A preflight (OPTIONS) is answered here with 204.
func CORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate")
		next.ServeHTTP(w, r)
	})
}
