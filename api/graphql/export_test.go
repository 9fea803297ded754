package graphql

// FastPathServed counts the requests the fast path answered.
var FastPathServed = &fastPathServed
