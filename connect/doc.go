// Package connect is the node's OpenID Provider: how a driver grants an app access to their cars through
// a standard OAuth 2.0 authorization code flow (RFC 6749 §4.1) with PKCE (RFC 7636, S256 only) and OpenID
// Connect Core 1.0, so that an app uses the OAuth/OIDC library it already has with the node's URL as
// issuer and its app address as client_id.
//
// # What it serves
//
//   - GET /.well-known/openid-configuration: discovery (OpenID Connect Discovery 1.0 §3, RFC 8414).
//   - GET /oauth/authorize: checks the request (ParseAuthorizeRequest) and renders the consent screen
//     (templates/consent.html, with the script of package web), or an error: shown to the driver when the
//     client or redirect URI cannot be trusted, else redirected (RFC 6749 §4.1.2.1, with RFC 9207 iss).
//   - POST /oauth/authorize/decision: the consent screen's own API. Allow posts one EIP-712 Grant per
//     chosen car, signed in the browser by the owner; they must be exactly the grants the screen showed,
//     and the code is issued only once the sequencer has made them durable. A driver whose grants in force
//     already cover the request posts an EIP-4361 sign-in instead.
//   - POST /oauth/authorize/deny: the Don't allow button; redirects with error=access_denied.
//   - The authorization_code and refresh_token grants of /oauth/token (Provider.TokenGrants, added to
//     auth.Issuer.TokenHandler next to the sign-in grant). Clients are public (client_id; PKCE binds the
//     code) or authenticate with private_key_jwt (RFC 7523) signed ES256K (RFC 8812) by the app key.
//   - GET/POST /oauth/userinfo (OpenID Connect Core §5.3) and POST /oauth/revoke (RFC 7009).
//
// # Tokens
//
// The access token is an auth access token whose subject is the app (auth.Delegation adds client_id, the
// consenting owner and the scope): the API decides every read with access.Check for the caller, which is
// the app, against its grants at that moment, so a revocation in the log ends the access on the next
// request. The ID token's subject is the owner, and its "vehicles" claim lists the cars granted in the
// flow. Codes live CodeTTL (60 s) and work once; refresh tokens rotate; presenting a used code or refresh
// token revokes every token issued from it.
//
// Codes, open consent screens, refresh tokens and used client assertion ids are the flow state, kept in a
// flowstate.Store (Config.Store): the process's memory on a single node, PostgreSQL shared by every api
// process of a cluster. docs/connect.md is the reference for app developers.
//
// It imports only auth, ledger and connect/flowstate (the store's contract): never a store or the API,
// which mounts it.
package connect
