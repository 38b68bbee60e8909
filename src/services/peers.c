/* peers.c — node keys, enrolment of peers with one-time codes, and signed sync requests and answers. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "services/audit.h"
#include "services/changelog.h"
#include "services/peers.h"
#include "store/accounts.h"
#include "store/sites.h"

/* Enrolment failures per address that cost nothing; then 30 s locks doubling up to 15 min (as sign-ins). */
#define ENROL_THROTTLE_FREE 9
#define ENROL_THROTTLE_WINDOW_MS (15LL * 60 * 1000)
#define ENROL_THROTTLE_MAX_LOCK_MS (15LL * 60 * 1000)

#define CODE_CHARS 25
#define KEY_FILE_MAX 256

/* Crockford's base32: no I, L, O or U, so a code read aloud or off a screen is hard to mistype. */
static const char code_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static const char *serve_dir;

/* ---- the node key ---- */

static int key_path(const char *dir, char *out, size_t n, struct err *e)
{
    if (dir == NULL)
        return err_set(e, ERR_INTERNAL, "no_node_key", "this process does not know where its node key is");
    if ((size_t)snprintf(out, n, "%s/%s", dir, PEERS_KEY_FILE) >= n)
        return err_set(e, ERR_INVALID, "path_too_long", "the data directory path is too long");
    return 0;
}

static void key_fill_public(struct node_key *k)
{
    crypto_sign_public_key(k->seed, k->pk);
    crypto_b64url_encode(k->pk, sizeof(k->pk), k->public_key, sizeof(k->public_key));
}

int peers_node_key_create(const char *dir, struct err *e)
{
    unsigned char seed[CRYPTO_SIGN_SEED_LEN];
    char path[4096], line[CRYPTO_B64URL_LEN(CRYPTO_SIGN_SEED_LEN) + 1];
    size_t len, off = 0;
    ssize_t n;
    int fd;

    if (key_path(dir, path, sizeof(path), e) < 0)
        return -1;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return err_set(e, ERR_CONFLICT, "key_exists", "'%s' already exists; refusing to replace a node key", path);
        return err_set(e, ERR_INTERNAL, "cannot_create_key", "cannot create the node key '%s': %s", path,
                       strerror(errno));
    }
    crypto_sign_seed_new(seed);
    crypto_b64url_encode(seed, sizeof(seed), line, sizeof(line) - 1);
    crypto_wipe(seed, sizeof(seed));
    len = strlen(line);
    line[len++] = '\n';
    while (off < len) {
        n = write(fd, line + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    crypto_wipe(line, sizeof(line));
    if (off != len || fsync(fd) < 0) {
        err_set(e, ERR_INTERNAL, "cannot_create_key", "cannot write the node key '%s': %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    close(fd);
    return 0;
}

/* Read and check an existing key file: 1 read, 0 missing, -1 error. */
static int key_read(const char *path, struct node_key *k, struct err *e)
{
    char text[KEY_FILE_MAX + 1];
    struct stat st;
    ssize_t n;
    size_t got = 0;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return err_set(e, ERR_INTERNAL, "cannot_read_key", "cannot open the node key '%s': %s", path,
                       strerror(errno));
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        err_set(e, ERR_INTERNAL, "cannot_read_key", "the node key '%s' is not a regular file", path);
        goto done;
    }
    /* like ssh: a secret others can read may already be someone else's */
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        err_set(e, ERR_INTERNAL, "key_permissions",
                "the node key '%s' can be read by others; run 'chmod 600 %s' (and consider the key leaked if "
                "it was shared)", path, path);
        goto done;
    }
    while (got < KEY_FILE_MAX) {
        n = read(fd, text + got, KEY_FILE_MAX - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    text[got] = '\0';
    text[strcspn(text, "\r\n \t")] = '\0';
    if (crypto_b64url_decode_exact(text, k->seed, sizeof(k->seed)) < 0) {
        err_set(e, ERR_INTERNAL, "bad_key", "the node key '%s' is damaged (expected 43 base64url characters)", path);
        goto done;
    }
    key_fill_public(k);
    rc = 1;
done:
    crypto_wipe(text, sizeof(text));
    close(fd);
    return rc;
}

int peers_node_key_load(const char *dir, struct node_key *k, struct err *e)
{
    char path[4096];
    int rc, tries;

    memset(k, 0, sizeof(*k));
    if (key_path(dir, path, sizeof(path), e) < 0)
        return -1;
    /* a node made before keys existed gets one on first use; two processes racing to make it both end
     * up reading the one that won (O_EXCL) */
    for (tries = 0; tries < 2; tries++) {
        rc = key_read(path, k, e);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
        if (peers_node_key_create(dir, e) < 0 && e->kind != ERR_CONFLICT)
            return -1;
        if (tries == 0)
            log_info("peers: made a node key in %s (this node had none)", path);
    }
    return err_set(e, ERR_INTERNAL, "cannot_read_key", "cannot read the node key '%s'", path);
}

void peers_node_key_wipe(struct node_key *k)
{
    crypto_wipe(k, sizeof(*k));
}

void peers_fingerprint(const char *public_key, char out[PEERS_FINGERPRINT_LEN])
{
    unsigned char pk[CRYPTO_SIGN_PUBLIC_LEN];
    char hex[CRYPTO_SHA256_HEX_LEN];
    int i, o = 0;

    out[0] = '\0';
    if (public_key == NULL || crypto_b64url_decode_exact(public_key, pk, sizeof(pk)) < 0)
        return;
    crypto_sha256_hex(pk, sizeof(pk), hex);
    for (i = 0; i < 32; i++) {
        if (i && i % 4 == 0)
            out[o++] = '-';
        out[o++] = hex[i];
    }
    out[o] = '\0';
}

/* Copy at most max bytes of in, never cutting a UTF-8 character in two. */
static void utf8_copy(char *out, size_t max, const char *in)
{
    size_t n = strlen(in);

    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)in[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, in, n);
    out[n] = '\0';
}

/* The name this node shows its peers: its default site's name. */
static int node_name(struct db *db, char out[PEER_NAME_MAX + 1], struct err *e)
{
    char site_id[ID_LEN];
    struct site_row s;
    int found;

    snprintf(out, PEER_NAME_MAX + 1, "sanad");
    found = store_meta_get(db, "default_site", site_id, sizeof(site_id), e);
    if (found < 0)
        return -1;
    if (found && (found = store_site_get(db, site_id, &s, e)) < 0)
        return -1;
    if (found)
        utf8_copy(out, PEER_NAME_MAX, s.name);
    return 0;
}

int peers_identity(struct db *db, const char *dir, struct node_identity *out, struct err *e)
{
    char stored[CRYPTO_SIGN_PUBLIC_B64_LEN + 8];
    struct node_key k;
    int found;

    memset(out, 0, sizeof(*out));
    if (peers_node_key_load(dir, &k, e) < 0)
        return -1;
    snprintf(out->public_key, sizeof(out->public_key), "%s", k.public_key);
    peers_node_key_wipe(&k);
    peers_fingerprint(out->public_key, out->fingerprint);
    if (changelog_node_id(db, out->node_id, e) < 0 || node_name(db, out->name, e) < 0)
        return -1;
    found = store_meta_get(db, "node_public_key", stored, sizeof(stored), e);
    if (found < 0)
        return -1;
    if (!found || strcmp(stored, out->public_key) != 0) {
        if (db_begin_write(db, e) < 0)
            return -1;
        if (store_meta_set(db, "node_public_key", out->public_key, e) < 0 || db_commit(db, e) < 0) {
            db_rollback(db);
            return -1;
        }
    }
    return 0;
}

int peers_serve_init(struct db *db, const char *dir, struct err *e)
{
    struct node_identity id;

    if (peers_identity(db, dir, &id, e) < 0)
        return -1;
    serve_dir = dir;
    return 0;
}

const char *peers_serve_dir(void)
{
    return serve_dir;
}

/* ---- checks of names, urls and codes ---- */

static int name_ok(const char *name, struct err *e)
{
    size_t n = name ? strlen(name) : 0;
    const unsigned char *p;
    json_t *probe;

    if (n == 0 || n > PEER_NAME_MAX)
        return err_set(e, ERR_INVALID, "invalid_peer_name", "a peer name has 1 to %d bytes", PEER_NAME_MAX);
    for (p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return err_set(e, ERR_INVALID, "invalid_peer_name", "a peer name may not hold control characters");
    /* Jansson refuses invalid UTF-8: what it cannot hold could never be listed or sent */
    if ((probe = json_string(name)) == NULL)
        return err_set(e, ERR_INVALID, "invalid_peer_name", "a peer name must be valid UTF-8");
    json_decref(probe);
    return 0;
}

static int url_ok(const char *url, struct err *e)
{
    size_t n = url ? strlen(url) : 0;
    const unsigned char *p;

    if (n == 0 || n > PEER_URL_MAX || !(str_has_prefix(url, "http://") || str_has_prefix(url, "https://")))
        return err_set(e, ERR_INVALID, "invalid_url", "a peer url starts with http:// or https:// and has at most %d bytes",
                       PEER_URL_MAX);
    for (p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '?' || *p == '#')
            return err_set(e, ERR_INVALID, "invalid_url",
                           "a peer url is the base address of a node, without spaces, query or fragment");
    return 0;
}

/* Copy url without trailing slashes ("https://hub/" and "https://hub" are one peer). */
static void url_copy(char out[PEER_URL_MAX + 1], const char *url)
{
    size_t n = strlen(url);

    while (n > 0 && url[n - 1] == '/')
        n--;
    snprintf(out, PEER_URL_MAX + 1, "%.*s", (int)n, url);
}

/* Normalise a typed code to its 25 characters: case, dashes and spaces do not matter, O reads as 0 and
 * I or L as 1. -1 when it cannot be a code. */
static int code_normalise(const char *in, char out[CODE_CHARS + 1])
{
    int n = 0;
    char c;

    for (; in && *in; in++) {
        c = *in;
        if (c == '-' || c == ' ')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c == 'O')
            c = '0';
        else if (c == 'I' || c == 'L')
            c = '1';
        if (strchr(code_alphabet, c) == NULL || n >= CODE_CHARS)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return n == CODE_CHARS ? 0 : -1;
}

static void code_hash(const char norm[CODE_CHARS + 1], char out[CRYPTO_HASH_HEX_LEN])
{
    crypto_hash_hex(norm, CODE_CHARS, out);
}

/* sites as a JSON array text ("" for none), each checked to exist. */
static int sites_json(struct db *db, const char *const *sites, int nsites, char out[PEER_SITES_JSON_MAX],
                      struct err *e)
{
    struct site_row s;
    size_t o = 0;
    int i, found;

    out[0] = '\0';
    if (nsites == 0)
        return 0;
    if (nsites > USER_SITES_MAX)
        return err_set(e, ERR_INVALID, "too_many_sites", "at most %d sites per peer", USER_SITES_MAX);
    out[o++] = '[';
    for (i = 0; i < nsites; i++) {
        if (!id_valid(sites[i]))
            return err_set(e, ERR_INVALID, "unknown_site", "'%.40s' is not a site id", sites[i]);
        found = store_site_get(db, sites[i], &s, e);
        if (found < 0)
            return -1;
        if (!found)
            return err_set(e, ERR_INVALID, "unknown_site", "site '%s' does not exist", sites[i]);
        o += (size_t)snprintf(out + o, PEER_SITES_JSON_MAX - o, "%s\"%s\"", i ? "," : "", sites[i]);
    }
    out[o++] = ']';
    out[o] = '\0';
    return 0;
}

/* ---- enrolment ---- */

int peers_invite(struct db *db, const struct caller *who, const char *name, const char *const *sites, int nsites,
                 int64_t hours, char code[PEERS_CODE_LEN], int64_t *expires_at, struct err *e)
{
    char norm[CODE_CHARS + 1], hash[CRYPTO_HASH_HEX_LEN], sj[PEER_SITES_JSON_MAX];
    struct peer_row existing;
    int64_t now = now_ms();
    int i, o = 0, found;

    code[0] = '\0';
    if (name_ok(name, e) < 0)
        return -1;
    if (hours < 1 || hours > PEERS_INVITE_HOURS_MAX)
        return err_set(e, ERR_INVALID, "invalid_hours", "an invite lasts 1 to %d hours", PEERS_INVITE_HOURS_MAX);
    if (db_begin_write(db, e) < 0)
        return -1;
    if (sites_json(db, sites, nsites, sj, e) < 0 || (found = store_peer_get_by_name(db, name, &existing, e)) < 0)
        goto fail;
    if (found) {
        err_set(e, ERR_CONFLICT, "peer_exists", "a peer called '%s' is already enrolled; remove it first", name);
        goto fail;
    }
    if ((found = store_invite_name_pending(db, name, now, e)) < 0)
        goto fail;
    if (found) {
        err_set(e, ERR_CONFLICT, "invite_pending", "an invite for '%s' is already pending; use it or wait until it expires",
                name);
        goto fail;
    }
    for (i = 0; i < CODE_CHARS; i++)
        norm[i] = code_alphabet[crypto_random_uniform(32)];
    norm[CODE_CHARS] = '\0';
    code_hash(norm, hash);
    *expires_at = now + hours * 3600 * 1000;
    if (store_invite_insert(db, hash, name, sj[0] ? sj : NULL, *expires_at, e) < 0
        || audit_record(db, who, "peer.invite", "peer", NULL, NULL, "ok", e) < 0 || db_commit(db, e) < 0)
        goto fail;
    for (i = 0; i < CODE_CHARS; i++) {
        if (i && i % 5 == 0)
            code[o++] = '-';
        code[o++] = norm[i];
    }
    code[o] = '\0';
    crypto_wipe(norm, sizeof(norm));
    return 0;
fail:
    crypto_wipe(norm, sizeof(norm));
    db_rollback(db);
    return -1;
}

/* How long an address stays locked after its n-th failed enrolment. */
static int64_t enrol_lock_ms(int64_t failures)
{
    int64_t over = failures - ENROL_THROTTLE_FREE, ms = 30000;

    if (over <= 0)
        return 0;
    while (--over > 0 && ms < ENROL_THROTTLE_MAX_LOCK_MS)
        ms *= 2;
    return ms < ENROL_THROTTLE_MAX_LOCK_MS ? ms : ENROL_THROTTLE_MAX_LOCK_MS;
}

/* Count a failed enrolment from the address of key, inside the caller's write transaction. */
static int enrol_throttle_fail(struct db *db, const char *key, int64_t now, struct err *e)
{
    int64_t failures, last, locked_until;

    if (store_throttle_get(db, key, &failures, &last, &locked_until, e) < 0)
        return -1;
    if (now - last > ENROL_THROTTLE_WINDOW_MS)
        failures = 0;
    failures++;
    return store_throttle_put(db, key, failures, now, now + enrol_lock_ms(failures), e);
}

static int enrol_fields_ok(struct db *db, const struct peer_enrolment *in, struct err *e)
{
    unsigned char pk[CRYPTO_SIGN_PUBLIC_LEN];
    char self[ID_LEN];

    if (in->node_id == NULL || !id_valid(in->node_id)) {
        err_set(e, ERR_INVALID, "invalid_node_id", "node_id must be a node id (a UUID)");
        return err_field(e, "node_id");
    }
    if (in->public_key == NULL || crypto_b64url_decode_exact(in->public_key, pk, sizeof(pk)) < 0) {
        err_set(e, ERR_INVALID, "invalid_public_key", "public_key must be an Ed25519 key: 43 base64url characters");
        return err_field(e, "public_key");
    }
    if (name_ok(in->name, e) < 0)
        return err_field(e, "name");
    if (in->url && url_ok(in->url, e) < 0)
        return err_field(e, "url");
    if (changelog_node_id(db, self, e) < 0)
        return -1;
    if (strcmp(self, in->node_id) == 0) {
        err_set(e, ERR_INVALID, "invalid_node_id", "a node cannot enrol with itself");
        return err_field(e, "node_id");
    }
    return 0;
}

json_t *peers_enrol(struct db *db, const char *dir, const struct caller *who, const struct peer_enrolment *in,
                    struct err *e)
{
    char norm[CODE_CHARS + 1], hash[CRYPTO_HASH_HEX_LEN], key[96];
    struct node_identity me;
    struct peer_row p;
    struct err dummy;
    int64_t now = now_ms(), failures, last, locked_until;
    int found;

    memset(&p, 0, sizeof(p));
    if (enrol_fields_ok(db, in, e) < 0 || peers_identity(db, dir, &me, e) < 0)
        return NULL;
    snprintf(key, sizeof(key), "enrol:%s", who->address);
    if (db_begin_write(db, e) < 0)
        return NULL;
    if (store_throttle_get(db, key, &failures, &last, &locked_until, e) < 0)
        goto fail;
    if (locked_until > now) {
        audit_record(db, who, "peer.enrol", "peer", in->node_id, NULL, "throttled", &dummy);
        db_commit(db, &dummy);
        err_set(e, ERR_THROTTLED, "too_many_attempts", "too many wrong enrolment codes; wait before trying again");
        e->retry_after = (int)((locked_until - now + 999) / 1000);
        return NULL;
    }
    found = 0;
    if (code_normalise(in->code, norm) == 0) {
        code_hash(norm, hash);
        found = store_invite_take(db, hash, now, p.name, p.sites, e);
    }
    crypto_wipe(norm, sizeof(norm));
    if (found < 0)
        goto fail;
    if (!found) {
        if (enrol_throttle_fail(db, key, now, e) < 0
            || audit_record(db, who, "peer.enrol", "peer", in->node_id, NULL, "failed", e) < 0 || db_commit(db, e) < 0)
            goto fail;
        err_set(e, ERR_UNAUTHENTICATED, "invalid_code", "the enrolment code is wrong, used or expired");
        return NULL;
    }
    snprintf(p.id, sizeof(p.id), "%s", in->node_id);
    snprintf(p.public_key, sizeof(p.public_key), "%s", in->public_key);
    if (in->url)
        url_copy(p.url, in->url);
    p.enrolled_at = now;
    /* a clash rolls the whole transaction back, so the code stays usable once the clash is cleared */
    if (store_peer_insert(db, &p, e) < 0 || store_throttle_clear(db, key, e) < 0
        || audit_record(db, who, "peer.enrol", "peer", p.id, NULL, "ok", e) < 0 || db_commit(db, e) < 0)
        goto fail;
    log_info("peers: enrolled node %s as '%s'", p.id, p.name);
    return json_pack("{s:s,s:s,s:s}", "node_id", me.node_id, "name", me.name, "public_key", me.public_key);
fail:
    db_rollback(db);
    return NULL;
}

json_t *peers_enrol_request(struct db *db, const char *dir, const char *code, const char *self_url, struct err *e)
{
    char norm[CODE_CHARS + 1];
    struct node_identity me;
    json_t *out;

    if (code_normalise(code, norm) < 0) {
        err_set(e, ERR_INVALID, "invalid_code",
                "an enrolment code has 25 letters and digits (as printed by 'sanad peer invite')");
        return NULL;
    }
    if (self_url && url_ok(self_url, e) < 0) {
        crypto_wipe(norm, sizeof(norm));
        return NULL;
    }
    if (peers_identity(db, dir, &me, e) < 0) {
        crypto_wipe(norm, sizeof(norm));
        return NULL;
    }
    out = json_pack("{s:s,s:s,s:s,s:s}", "code", norm, "node_id", me.node_id, "name", me.name, "public_key",
                    me.public_key);
    crypto_wipe(norm, sizeof(norm));
    if (out && self_url)
        json_object_set_new(out, "url", json_string(self_url));
    if (out == NULL)
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    return out;
}

/* Compare fingerprints ignoring case, dashes and spaces. */
static int fingerprint_match(const char *want, const char *have)
{
    char a[80], b[80];
    size_t i = 0, j = 0;

    for (; *want && i < sizeof(a) - 1; want++)
        if (*want != '-' && *want != ' ' && *want != ':')
            a[i++] = (char)((*want >= 'A' && *want <= 'F') ? *want - 'A' + 'a' : *want);
    for (; *have && j < sizeof(b) - 1; have++)
        if (*have != '-')
            b[j++] = *have;
    a[i] = b[j] = '\0';
    return i > 0 && strcmp(a, b) == 0;
}

int peers_enrol_accept(struct db *db, const struct caller *who, const char *hub_url, const char *name,
                       const char *fingerprint, const json_t *answer, struct peer_row *out, struct err *e)
{
    const char *hub_id = json_get_string(answer, "node_id"), *hub_key = json_get_string(answer, "public_key");
    const char *hub_name = json_get_string(answer, "name");
    unsigned char pk[CRYPTO_SIGN_PUBLIC_LEN];
    char fp[PEERS_FINGERPRINT_LEN], self[ID_LEN], try_name[PEER_NAME_MAX + 1], base[PEER_NAME_MAX - 3];
    struct peer_row existing;
    int found, n;

    memset(out, 0, sizeof(*out));
    if (hub_id == NULL || !id_valid(hub_id) || hub_key == NULL
        || crypto_b64url_decode_exact(hub_key, pk, sizeof(pk)) < 0)
        return err_set(e, ERR_INVALID, "bad_enrolment_answer",
                       "the hub's answer to the enrolment has no valid node_id and public_key");
    peers_fingerprint(hub_key, fp);
    if (fingerprint && !fingerprint_match(fingerprint, fp))
        return err_set(e, ERR_UNAUTHENTICATED, "fingerprint_mismatch",
                       "the hub's key fingerprint is %s, not the one given; do not trust this connection", fp);
    if (name && name_ok(name, e) < 0)
        return -1;
    if ((hub_url && url_ok(hub_url, e) < 0) || changelog_node_id(db, self, e) < 0)
        return -1;
    if (strcmp(self, hub_id) == 0)
        return err_set(e, ERR_INVALID, "enrolled_with_self", "that is this very node");
    snprintf(out->id, sizeof(out->id), "%s", hub_id);
    snprintf(out->public_key, sizeof(out->public_key), "%s", hub_key);
    url_copy(out->url, hub_url ? hub_url : "");
    out->enrolled_at = now_ms();
    if (db_begin_write(db, e) < 0)
        return -1;
    if (name) {
        snprintf(out->name, sizeof(out->name), "%s", name);
    } else {
        /* the hub's own name, made unique here ("Hub", "Hub 2", ...) so a consumed code is never wasted */
        if (hub_name == NULL || name_ok(hub_name, e) < 0) {
            err_clear(e);
            hub_name = "hub";
        }
        snprintf(try_name, sizeof(try_name), "%s", hub_name);
        utf8_copy(base, sizeof(base) - 1, hub_name);
        for (n = 2; (found = store_peer_get_by_name(db, try_name, &existing, e)) == 1 && n < 100; n++)
            snprintf(try_name, sizeof(try_name), "%s %u", base, (unsigned)n % 100u);
        if (found < 0)
            goto fail;
        snprintf(out->name, sizeof(out->name), "%s", try_name);
    }
    if (store_peer_insert(db, out, e) < 0 || audit_record(db, who, "peer.add", "peer", out->id, NULL, "ok", e) < 0
        || db_commit(db, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return -1;
}

/* ---- listing, removal, attempts ---- */

static json_t *time_or_null(int64_t ms)
{
    char at[32];

    if (ms <= 0)
        return json_null();
    format_time_ms(ms, at, sizeof(at));
    return json_string(at);
}

static int list_one(const struct peer_row *p, void *ctx)
{
    char fp[PEERS_FINGERPRINT_LEN];
    json_t *o, *sites = NULL;

    peers_fingerprint(p->public_key, fp);
    if (p->sites[0])
        sites = json_loads(p->sites, 0, NULL);
    o = json_pack("{s:s,s:s,s:s?,s:s,s:s,s:o,s:o,s:o,s:o,s:s?}", "id", p->id, "name", p->name, "url",
                  p->url[0] ? p->url : NULL, "public_key", p->public_key, "fingerprint", fp, "sites",
                  sites ? sites : json_null(), "enrolled_at", time_or_null(p->enrolled_at), "last_attempt_at",
                  time_or_null(p->last_attempt_at), "last_success_at", time_or_null(p->last_success_at),
                  "last_error", p->last_error[0] ? p->last_error : NULL);
    return o && json_array_append_new(ctx, o) == 0 ? 0 : -1;
}

json_t *peers_list(struct db *db, struct err *e)
{
    json_t *items = json_array();

    if (items == NULL || store_peer_list(db, list_one, items, e) < 0) {
        json_decref(items);
        if (items == NULL)
            err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        return NULL;
    }
    return items;
}

int peers_get_by_name(struct db *db, const char *name, struct peer_row *out, struct err *e)
{
    int found = store_peer_get_by_name(db, name, out, e);

    if (found < 0)
        return -1;
    if (!found)
        return err_set(e, ERR_NOT_FOUND, "no_such_peer", "there is no peer called '%s' ('sanad peer list')", name);
    return 0;
}

int peers_get(struct db *db, const char *id, struct peer_row *out, struct err *e)
{
    int found = store_peer_get(db, id, out, e);

    if (found < 0)
        return -1;
    if (!found)
        return err_set(e, ERR_NOT_FOUND, "no_such_peer", "node %s is not an enrolled peer", id);
    return 0;
}

struct sync_targets {
    struct peer_row *rows;
    size_t n, cap;
};

static int collect_target(const struct peer_row *row, void *ctx)
{
    struct sync_targets *t = ctx;
    struct peer_row *grown;

    if (row->url[0] == '\0')
        return 0;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        grown = realloc(t->rows, t->cap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        t->rows = grown;
    }
    t->rows[t->n++] = *row;
    return 0;
}

int peers_sync_targets(struct db *db, struct peer_row **rows, size_t *n, struct err *e)
{
    struct sync_targets t = { NULL, 0, 0 };

    if (store_peer_list(db, collect_target, &t, e) < 0) {
        free(t.rows);
        return -1;
    }
    *rows = t.rows;
    *n = t.n;
    return 0;
}

int peers_remove(struct db *db, const struct caller *who, const char *name, struct err *e)
{
    struct peer_row p;
    int found;

    if (db_begin_write(db, e) < 0)
        return -1;
    if ((found = store_peer_get_by_name(db, name, &p, e)) < 0)
        goto fail;
    if (!found) {
        err_set(e, ERR_NOT_FOUND, "no_such_peer", "there is no peer called '%s' ('sanad peer list')", name);
        goto fail;
    }
    if (store_peer_delete_by_name(db, name, e) < 0 || audit_record(db, who, "peer.remove", "peer", p.id, NULL, "ok", e) < 0
        || db_commit(db, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int peers_record_attempt(struct db *db, const char *peer_id, const char *error, struct err *e)
{
    char msg[PEER_ERROR_MAX + 1];

    if (error)
        snprintf(msg, sizeof(msg), "%s", error);
    /* bookkeeping for people (sanad peer list, the sync status): it need not wait for the disk */
    if (db_begin_write_relaxed(db, e) < 0)
        return -1;
    if (store_peer_record_attempt(db, peer_id, now_ms(), error ? msg : NULL, e) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    return 0;
}

/* ---- signed requests ---- */

int peers_nonce_issue(struct db *db, char nonce[CRYPTO_TOKEN_LEN], struct err *e)
{
    int64_t now = now_ms(), outstanding = 0;

    crypto_random_token(nonce);
    /* without waiting for the disk: a nonce lost to a power cut only fails the request it was for (its
     * use, which replay protection rests on, is committed durably: peers_authenticate) */
    if (db_begin_write_relaxed(db, e) < 0)
        return -1;
    if (store_nonces_purge(db, now, &outstanding, e) < 0)
        goto fail;
    /* the endpoint is public: bound the table an anonymous flood could grow */
    if (outstanding >= PEERS_NONCES_MAX) {
        db_commit(db, e);
        err_set(e, ERR_THROTTLED, "too_many_nonces", "too many sync requests are pending; try again shortly");
        e->retry_after = 10;
        return -1;
    }
    if (store_nonce_insert(db, nonce, now + PEERS_NONCE_TTL_MS, e) < 0 || db_commit(db, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return -1;
}

/* The exact bytes a request signature covers. */
static int request_message(struct buf *m, const char *method, const char *path, const void *body, size_t len,
                           const char *timestamp, const char *nonce, const char *node_id)
{
    char hash[CRYPTO_SHA256_HEX_LEN];

    crypto_sha256_hex(body ? body : "", body ? len : 0, hash);
    return buf_printf(m, "sanad-sync-v1\n%s\n%s\n%s\n%s\n%s\n%s", method, path, hash, timestamp, nonce, node_id);
}

static int token_shaped(const char *s, size_t min, size_t max)
{
    size_t n = s ? strlen(s) : 0;

    if (n < min || n > max)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

static int timestamp_shaped(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > 16)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Refuse and audit a sync request. */
static int auth_fail(struct db *db, const struct caller *who, const char *node, const char *code, const char *msg,
                     struct err *e)
{
    struct err dummy;

    audit_record(db, who, "sync.auth", "peer", node && id_valid(node) ? node : NULL, NULL, "denied", &dummy);
    return err_set(e, ERR_UNAUTHENTICATED, code, "%s", msg);
}

int peers_authenticate(struct db *db, const struct caller *who, const struct peers_signed_request *r,
                       char peer_id[ID_LEN], struct err *e)
{
    unsigned char pk[CRYPTO_SIGN_PUBLIC_LEN], sig[CRYPTO_SIGN_BYTES];
    struct peer_row p;
    struct buf m;
    int found, valid;

    peer_id[0] = '\0';
    if (r->node_id == NULL || !id_valid(r->node_id))
        return auth_fail(db, who, NULL, "unknown_peer",
                         "sync requests need the X-Sanad-Node header of an enrolled node", e);
    if ((found = store_peer_get(db, r->node_id, &p, e)) < 0)
        return -1;
    if (!found)
        return auth_fail(db, who, NULL, "unknown_peer", "this node is not enrolled here; enrol it with 'sanad peer add'",
                         e);
    if (!token_shaped(r->nonce, 43, 43))
        return auth_fail(db, who, p.id, "invalid_nonce", "the request needs a nonce from POST /api/v1/sync/nonce", e);
    /* used up before the signature is checked: a nonce serves one request, good or bad */
    if (db_begin_write(db, e) < 0)
        return -1;
    if ((found = store_nonce_take(db, r->nonce, now_ms(), e)) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    if (!found)
        return auth_fail(db, who, p.id, "invalid_nonce", "the nonce is unknown, used or expired; ask for a new one", e);
    if (!timestamp_shaped(r->timestamp) || !token_shaped(r->signature, 86, 86)
        || crypto_b64url_decode_exact(r->signature, sig, sizeof(sig)) < 0
        || crypto_b64url_decode_exact(p.public_key, pk, sizeof(pk)) < 0)
        return auth_fail(db, who, p.id, "bad_signature", "the request signature is missing or malformed", e);
    buf_init(&m, 4096);
    if (request_message(&m, r->method, r->path, r->body, r->len, r->timestamp, r->nonce, r->node_id) < 0) {
        buf_free(&m);
        return auth_fail(db, who, p.id, "bad_signature", "the signed request line is too long", e);
    }
    valid = crypto_sign_check(pk, m.data, m.len, sig);
    buf_free(&m);
    if (!valid)
        return auth_fail(db, who, p.id, "bad_signature", "the request signature does not verify with this node's key",
                         e);
    snprintf(peer_id, ID_LEN, "%s", p.id);
    return 0;
}

int peers_sign_request(const struct node_key *k, const char *method, const char *path, const void *body,
                       size_t len, const char *timestamp, const char *nonce, const char *node_id,
                       char sig[CRYPTO_SIGN_B64_LEN], struct err *e)
{
    unsigned char raw[CRYPTO_SIGN_BYTES];
    struct buf m;

    buf_init(&m, 4096);
    if (request_message(&m, method, path, body, len, timestamp, nonce, node_id) < 0) {
        buf_free(&m);
        return err_set(e, ERR_INTERNAL, "sign_failed", "the request to sign is too long");
    }
    crypto_sign_make(k->seed, m.data, m.len, raw);
    buf_free(&m);
    crypto_b64url_encode(raw, sizeof(raw), sig, CRYPTO_SIGN_B64_LEN);
    return 0;
}

static int response_message(struct buf *m, const char *nonce, const void *body, size_t len)
{
    char hash[CRYPTO_SHA256_HEX_LEN];

    crypto_sha256_hex(body ? body : "", body ? len : 0, hash);
    return buf_printf(m, "sanad-sync-response-v1\n%s\n%s", nonce, hash);
}

int peers_sign_response(const char *dir, const char *nonce, const void *body, size_t len,
                        char sig[CRYPTO_SIGN_B64_LEN], struct err *e)
{
    unsigned char raw[CRYPTO_SIGN_BYTES];
    struct node_key k;
    struct buf m;

    buf_init(&m, 1024);
    if (nonce == NULL || response_message(&m, nonce, body, len) < 0) {
        buf_free(&m);
        return err_set(e, ERR_INTERNAL, "sign_failed", "cannot sign the answer");
    }
    if (peers_node_key_load(dir, &k, e) < 0) {
        buf_free(&m);
        return -1;
    }
    crypto_sign_make(k.seed, m.data, m.len, raw);
    peers_node_key_wipe(&k);
    buf_free(&m);
    crypto_b64url_encode(raw, sizeof(raw), sig, CRYPTO_SIGN_B64_LEN);
    return 0;
}

int peers_check_response(const char *public_key, const char *nonce, const void *body, size_t len,
                         const char *sig, struct err *e)
{
    unsigned char pk[CRYPTO_SIGN_PUBLIC_LEN], raw[CRYPTO_SIGN_BYTES];
    struct buf m;
    int valid;

    if (sig == NULL || crypto_b64url_decode_exact(sig, raw, sizeof(raw)) < 0
        || crypto_b64url_decode_exact(public_key, pk, sizeof(pk)) < 0)
        return err_set(e, ERR_UNAUTHENTICATED, "bad_response_signature",
                       "the peer's answer carries no valid signature; it may have been altered on the way");
    buf_init(&m, 1024);
    if (response_message(&m, nonce, body, len) < 0) {
        buf_free(&m);
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    }
    valid = crypto_sign_check(pk, m.data, m.len, raw);
    buf_free(&m);
    if (!valid)
        return err_set(e, ERR_UNAUTHENTICATED, "bad_response_signature",
                       "the peer's answer is not signed by its enrolled key; it may have been altered on the way");
    return 0;
}
