/* sites.c — sites and the creation of a new node's data directory. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "services/audit.h"
#include "services/changelog.h"
#include "services/forms.h"
#include "services/peers.h"
#include "services/sites.h"
#include "services/users.h"
#include "store/sites.h"

static json_t *site_to_json(const struct site_row *s)
{
    char at[32];

    format_time_ms(s->created_at, at, sizeof(at));
    return json_pack("{s:s,s:s,s:s}", "id", s->id, "name", s->name, "created_at", at);
}

static int site_name_ok(const char *name, struct err *e)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > SITE_NAME_MAX)
        return err_set(e, ERR_INVALID, "invalid_site_name", "a site name has 1 to %d bytes", SITE_NAME_MAX);
    return 0;
}

/* Store a new site and log it as a replicated change, so that other nodes learn it (a hub must know
 * the sites of the patients it receives). */
static int site_record(struct db *db, const struct site_row *s, struct err *e)
{
    json_t *fields = json_pack("{s:s,s:I}", "name", s->name, "created_at", (json_int_t)s->created_at);
    int rc;

    if (fields == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    rc = store_site_insert(db, s, e) < 0 || changelog_record(db, NULL, SITE_TABLE, s->id, fields, CHANGELOG_NEW_ROW,
                                                             NULL, e) < 0 ? -1 : 0;
    json_decref(fields);
    return rc;
}

int sites_apply(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e)
{
    struct site_row s;
    const json_t *created = json_object_get(fields, "created_at");

    snprintf(s.id, sizeof(s.id), "%s", id);
    snprintf(s.name, sizeof(s.name), "%s", json_string_value(json_object_get(fields, "name")));
    s.created_at = json_is_integer(created) ? json_integer_value(created) : at;
    return store_site_put(db, &s, e);
}

int sites_check_fields(const json_t *fields, struct err *e)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)fields, key, v) {
        if (strcmp(key, "name") == 0 && json_is_string(v) && json_string_length(v) > 0
            && json_string_length(v) <= SITE_NAME_MAX)
            continue;
        if (strcmp(key, "created_at") == 0 && json_is_integer(v))
            continue;
        return err_set(e, ERR_INVALID, "invalid_change", "a site change has an unknown or malformed field '%.40s'", key);
    }
    return 0;
}

json_t *sites_create(struct db *db, const struct caller *who, const char *name, struct err *e)
{
    struct site_row s;
    json_t *out;
    int taken;

    if (site_name_ok(name, e) < 0)
        return NULL;
    id_new(s.id);
    snprintf(s.name, sizeof(s.name), "%s", name);
    s.created_at = now_ms();
    if (db_begin_write(db, e) < 0)
        return NULL;
    taken = store_site_name_taken(db, s.name, e);
    if (taken > 0)
        err_set(e, ERR_CONFLICT, "site_exists", "a site with this name already exists");
    if (taken != 0 || site_record(db, &s, e) < 0
        || audit_record(db, who, "site.create", "site", s.id, s.id, "ok", e) < 0) {
        db_rollback(db);
        return NULL;
    }
    out = site_to_json(&s);
    if (out == NULL || db_commit(db, e) < 0) {
        json_decref(out);
        db_rollback(db);
        if (out == NULL)
            err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        return NULL;
    }
    return out;
}

static int list_one(const struct site_row *s, void *ctx)
{
    json_t *o = site_to_json(s);

    return o && json_array_append_new(ctx, o) == 0 ? 0 : -1;
}

json_t *sites_list(struct db *db, const struct caller *who, struct err *e)
{
    json_t *items = json_array();

    (void)who;
    if (items == NULL || store_site_list(db, list_one, items, e) < 0) {
        json_decref(items);
        if (items == NULL)
            err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        return NULL;
    }
    return json_pack("{s:o}", "items", items);
}

static int dir_is_empty(const char *path)
{
    struct dirent *d;
    DIR *dir = opendir(path);
    int empty = 1;

    if (dir == NULL)
        return 0;
    while ((d = readdir(dir)) != NULL)
        if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
            empty = 0;
    closedir(dir);
    return empty;
}

static void remove_db_files(const char *dir)
{
    static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
    char path[4096];
    size_t i;

    for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s%s", dir, DB_FILE, suffixes[i]);
        unlink(path);
    }
}

int node_init(const struct node_init_options *o, char node_id[ID_LEN], struct err *e)
{
    struct caller local;
    struct site_row site;
    struct user_input admin;
    struct db *db = NULL;
    json_t *user;
    int created_dir = 0;
    char now[32];

    if (site_name_ok(o->site_name, e) < 0)
        return -1;
    if (mkdir(o->dir, 0700) == 0) {
        created_dir = 1;
    } else if (errno != EEXIST) {
        return err_set(e, ERR_INVALID, "cannot_create", "cannot create data directory '%s': %s", o->dir,
                       strerror(errno));
    } else if (!dir_is_empty(o->dir)) {
        return err_set(e, ERR_CONFLICT, "data_exists",
                       "'%s' already exists and is not empty; refusing to touch an existing data directory", o->dir);
    } else if (chmod(o->dir, 0700) < 0) {
        return err_set(e, ERR_INVALID, "cannot_create", "cannot restrict '%s' to its owner: %s", o->dir,
                       strerror(errno));
    }
    if (db_open(o->dir, DB_CREATE, &db, e) < 0)
        goto fail;
    caller_local(&local, "init");
    id_new(node_id);
    id_new(site.id);
    snprintf(site.name, sizeof(site.name), "%s", o->site_name);
    site.created_at = now_ms();
    format_time_ms(site.created_at, now, sizeof(now));
    if (db_begin_write(db, e) < 0)
        goto fail;
    if (store_meta_set(db, "node_id", node_id, e) < 0 || store_meta_set(db, "created_at", now, e) < 0
        || store_meta_set(db, "locales", o->locales, e) < 0 || site_record(db, &site, e) < 0
        || store_meta_set(db, "default_site", site.id, e) < 0
        || audit_record(db, &local, "node.init", "node", node_id, site.id, "ok", e) < 0
        || db_commit(db, e) < 0) {
        db_rollback(db);
        goto fail;
    }
    memset(&admin, 0, sizeof(admin));
    admin.username = o->admin_username;
    admin.full_name = "Administrator";
    admin.role = "admin";
    admin.password = o->admin_password;
    user = users_create(db, &local, &admin, e);
    if (user == NULL)
        goto fail;
    json_decref(user);
    if (forms_seed_builtin(db, e) < 0 || peers_node_key_create(o->dir, e) < 0)
        goto fail;
    db_close(db);
    return 0;
fail:
    db_close(db);
    remove_db_files(o->dir);
    if (created_dir)
        rmdir(o->dir);
    return -1;
}

