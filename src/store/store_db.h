/* For the store's own modules only (store/secrets.c): the SQLite connection behind a
 * struct store. Nothing outside src/store/ includes this. */
#ifndef LABBOOK_STORE_STORE_DB_H
#define LABBOOK_STORE_STORE_DB_H

#include <sqlite3.h>

struct store;

/* The connection (owned by the store). */
sqlite3 *store_db(struct store *s);

#endif
