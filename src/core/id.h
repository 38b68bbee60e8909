/* id.h — record identifiers: UUIDv7 (RFC 9562) as 36-character lower-case text.
 * Time-ordered so B-tree inserts stay local; 74 random bits so two offline nodes never collide.
 */
#ifndef SANAD_ID_H
#define SANAD_ID_H

#define ID_LEN 37   /* 36 characters and the NUL */

void id_new(char out[ID_LEN]);
/* 1 when s is a well-formed UUID in canonical lower-case text form. */
int id_valid(const char *s);

#endif
