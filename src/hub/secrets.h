/* Users' secrets (google.colab.userdata, docs/colab.md): the /api/secrets API of the
 * Secrets panel, and the answers to runtimes that ask for one through their agent.
 * Values are sealed (XChaCha20-Poly1305) with a key kept in DATA/secrets.key (0600,
 * outside every runtime's view) before they reach the store. */
#ifndef LABBOOK_HUB_SECRETS_H
#define LABBOOK_HUB_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hub;
struct http_req;
struct kernel;

#define SECRET_NAME_MAX 128          /* bytes of a secret's name */
#define SECRET_VALUE_MAX (64 * 1024) /* bytes of a value */
#define SECRET_NOTEBOOK_MAX 4096     /* bytes of a notebook path in a grant */
#define SECRET_REQUESTS_BURST 20     /* a runtime's requests at once... */
#define SECRET_REQUESTS_PER_S 10     /* ...and per second after that */

/* Reads DATA/secrets.key, creating it (32 random bytes, 0600) if missing. Returns 0, or
 * a negative errno with *err (caller frees). */
int secrets_open(struct hub *h, char **err);
void secrets_close(struct hub *h);
/* A secret's name: 1-SECRET_NAME_MAX of [A-Za-z0-9_], not starting with a digit. */
bool secrets_name_valid(const char *name);
/* Handles /api/secrets[/NAME[/access]]; rest is what follows "/api/secrets". */
void secrets_api(struct hub *h, struct http_req *req, const char *rest);
/* A STREAM_SECRET frame from kernel k's agent: answered with STREAM_SECRET_REPLY for the
 * runtime's owner and the notebook its session is bound to (never a path the runtime
 * gives). */
void secrets_on_agent_request(struct kernel *k, const uint8_t *p, size_t len);

#endif
