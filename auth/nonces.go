package auth

import "github.com/glovebox/glovebox/auth/challenge"

// DefaultMaxNonces bounds the outstanding challenges kept in memory when Config.Challenges is nil; beyond
// it the oldest is forgotten.
const DefaultMaxNonces = challenge.DefaultMaxMemory
