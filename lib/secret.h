/*
 * lib/secret.h - the small crypto helpers credentials share: lowercase hex,
 * SHA-256 as hex (tokens are stored as hashes only) and random hex ids and
 * secrets from OpenSSL's CSPRNG.
 */
#ifndef LLMD_SECRET_H
#define LLMD_SECRET_H

#include <stddef.h>

/* out (2n+1 bytes) = lowercase hex of p[0..n) */
void secret_hex(const unsigned char *p, size_t n, char *out);
/* out = hex SHA-256 of the string s */
void secret_sha256_hex(const char *s, char out[65]);
/* out (2*bytes+1) = hex of bytes (<= 32) random bytes; 0 or -EIO */
int secret_random_hex(size_t bytes, char *out);

#endif
