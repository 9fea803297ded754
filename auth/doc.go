// Package auth signs accounts in: apps and owners prove control of an Ethereum-style account with an
// EIP-4361 (Sign-In with Ethereum, https://eips.ethereum.org/EIPS/eip-4361) message and get a short-lived
// JWT (RFC 7519) access token from the node. The token says who the caller is, never what it may read:
// every read is checked against the ledger's grants when it happens.
//
// # Flow
//
//  1. GET /v1/auth/challenge?address=0x… (Issuer.ChallengeHandler) answers
//     {"message": "…", "nonce": "…", "expiresAt": "2026-03-01T12:05:00Z"}.
//  2. The caller signs message, byte for byte, with personal_sign (EIP-191: keccak256 of
//     "\x19Ethereum Signed Message:\n" + decimal length + message), as any wallet does.
//  3. POST /oauth/token (Issuer.TokenHandler), application/x-www-form-urlencoded, with
//     grant_type=urn:glovebox:params:oauth:grant-type:siwe, message and signature (0x and 65 bytes of
//     hex, r‖s‖v, v 27/28 or 0/1, low s) answers the RFC 6749 §5.1 response
//     {"access_token": "<JWT>", "token_type": "Bearer", "expires_in": 3600}.
//  4. Requests carry "Authorization: Bearer <JWT>" (RFC 6750); Issuer.FromRequest / Issuer.Middleware
//     verify it. Anyone can verify a token offline with the key set at /.well-known/jwks.json
//     (Issuer.JWKSHandler).
//
// The token endpoint takes further grant types through TokenHandler's extra handlers: package connect
// adds authorization_code and refresh_token, whose access tokens (IssueDelegated) carry a Delegation —
// the app as subject, the consenting owner, the client_id and the scope. Revoke makes Verify refuse a token
// before its expiry.
//
// # The challenge
//
// A challenge is an EIP-4361 message written exactly per the ABNF of the EIP (LF line breaks, no trailing
// newline). For a node whose Config has Domain "node.example" and Issuer "https://node.example", at
// 2026-03-01 12:00:00 UTC, for account 0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2:
//
//	node.example wants you to sign in with your Ethereum account:
//	0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2
//
//	Sign in to Glovebox. This proves you control this account; it grants nothing.
//
//	URI: https://node.example
//	Version: 1
//	Chain ID: 1
//	Nonce: 5f0c6a1e9b3d47c2a8e1f6b0d9c3a7e4
//	Issued At: 2026-03-01T12:00:00Z
//	Expiration Time: 2026-03-01T12:05:00Z
//
// The address is EIP-55 checksummed. The nonce is 128 random bits in lower-case hex (EIP-4361 wants 8 or
// more letters and digits); the node keeps it outstanding in Config.Challenges (a challenge.Store) until
// the Expiration Time (Config.ChallengeTTL, 5 minutes) or the one successful exchange that consumes it.
// A nonce is bound to the address it was issued to. "Chain ID" is required by EIP-4361 but binds nothing
// here (no chain is involved); it is 1 so that every wallet shows it without asking to switch networks.
// A single node keeps challenges in its memory (challenge.Memory, at most DefaultMaxNonces, oldest
// forgotten first); a cluster's processes share them in PostgreSQL (store/postgres.Challenges), so that
// behind a load balancer the challenge and the token request may reach different processes. Either way
// a challenge is consumed once: of two exchanges racing, in one process or two, one gets a token.
//
// The exchange accepts the message only if it parses (ParseSIWE: strict, canonical form only), its domain,
// URI, chain id and version are this node's, its nonce is outstanding and was issued to its address, the
// time is within [Issued At − Skew, Expiration Time) and not before Not Before, and the signature recovers
// (ledger.Recover: canonical signatures only) to the message's address. Optional fields (Not Before,
// Request ID, Resources) may be added by the client; they are signed, checked for syntax, and otherwise
// ignored.
//
// # The token
//
// A compact JWS (RFC 7515) signed ES256 (ECDSA P-256 with SHA-256), the algorithm every OAuth/OIDC library
// verifies. The key lives in Config.Dir/jwt.key (PKCS#8 PEM, mode 0600, created on first use); its "kid" is
// its RFC 7638 JWK thumbprint. Header and claims:
//
//	{"alg":"ES256","kid":"<thumbprint>","typ":"JWT"}
//	{
//	  "iss": "https://node.example",                          // Config.Issuer
//	  "sub": "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",    // the account, EIP-55
//	  "aud": "glovebox",
//	  "iat": 1772366400, "nbf": 1772366400,
//	  "exp": 1772370000,                                      // iat + Config.TokenTTL (1 h)
//	  "jti": "<128 random bits, base64url>"
//	}
//
// Issuer.Verify accepts only ES256 (so "none" and HS256 keyed with the public key are refused before any
// key is used), this node's kid and signature, canonical base64url segments (one token has one spelling),
// iss, aud "glovebox" alone, nbf − Skew ≤ now < exp on the Issuer's clock, and an EIP-55 sub.
//
// # Errors
//
// Refusals are *Error with a stable Code (CodeUnauthenticated, CodeInvalidGrant, CodeInvalidRequest,
// CodeUnsupportedGrantType; ErrorCodes gives their HTTP status). The token endpoint writes them in the
// RFC 6749 §5.2 shape {"error": "invalid_grant", "error_description": "…"}; the other handlers in the REST
// shape {"error": {"code": "…", "message": "…"}}. Messages never contain a token or a signature.
//
// It imports only ledger (for the signature checks) and auth/challenge (the contract of the challenge
// store): never telemetry, a store or the API.
package auth
