/* peer.c — `sanad peer invite|add|list|remove`: enrol nodes with each other by one-time code and pinned
 * Ed25519 keys (services/peers.h), the hub side and the node side. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/crypto.h"
#include "core/util.h"
#include "http/client.h"
#include "services/peers.h"
#include "store/db.h"

static const char usage[] =
    "sanad peer invite --data DIR --name NAME [--site ID]... [--hours 24]\n"
    "       sanad peer add --data DIR --url URL --code CODE [--name NAME] [--hub-key FINGERPRINT]\n"
    "                      [--self-url URL] [--insecure]\n"
    "       sanad peer request --data DIR --code CODE --out FILE       (enrolment without a network)\n"
    "       sanad peer accept --data DIR --in FILE --out FILE\n"
    "       sanad peer add --data DIR --answer FILE [--name NAME] [--hub-key FINGERPRINT]\n"
    "       sanad peer list --data DIR\n"
    "       sanad peer remove --data DIR --name NAME";

static const char help[] =
    "Enrol nodes with each other so that they can sync. On the hub, 'invite' prints a one-time code\n"
    "(single use, expiring) for the node to be called NAME; on the node, 'add' sends that code to the\n"
    "hub at URL: both keep the other's Ed25519 public key, and every sync request and answer is signed\n"
    "with it from then on. No password ever crosses the network.\n\n"
    "  invite --name NAME     what the hub will call the new node\n"
    "         --site ID       restrict what the node receives to these sites (repeatable; default: all)\n"
    "         --hours N       how long the code stays valid (default 24, at most 720)\n"
    "  add    --url URL       the hub's address, e.g. https://hub.example.org:8443\n"
    "         --code CODE     the code printed by 'sanad peer invite' on the hub\n"
    "         --name NAME     what this node will call the hub (default: the hub's own name)\n"
    "         --hub-key FP    the hub key fingerprint printed by 'invite': refuse any other key\n"
    "         --self-url URL  where the hub can reach this node, if it should sync towards it too\n"
    "         --insecure      accept a self-signed TLS certificate (signatures still protect the data)\n"
    "  list                   the enrolled peers, their keys and their last sync\n"
    "\n"
    "Without a network (for nodes that sync only by bundles, 'sanad bundle'): on the node, 'request'\n"
    "writes the enrolment request for the code to FILE (it holds the code: carry it by hand); on the hub,\n"
    "'accept' enrols the node from it and writes the hub's answer to FILE; on the node, 'add --answer'\n"
    "pins the hub from that answer. Each side prints the other's key fingerprint: compare them by phone\n"
    "or on paper with what the other side printed about itself before trusting the pair.\n"
    "  remove --name NAME     forget a peer (and how far sync with it got)\n";

static int peer_invite(struct db *db, const char *dir, const char *name, const char *const *sites, int nsites,
                       int64_t hours)
{
    char code[PEERS_CODE_LEN], expires[32];
    struct node_identity me;
    struct caller local;
    int64_t expires_at;
    struct err e;
    int i;

    err_clear(&e);
    caller_local(&local, "peer");
    if (peers_identity(db, dir, &me, &e) < 0
        || peers_invite(db, &local, name, sites, nsites, hours, code, &expires_at, &e) < 0)
        return cmd_fail(&e);
    format_time_ms(expires_at, expires, sizeof(expires));
    printf("Enrolment code: %s\n", code);
    printf("For peer:       %s\n", name);
    printf("Sites:          ");
    if (nsites == 0)
        printf("every site");
    for (i = 0; i < nsites; i++)
        printf("%s%s", i ? ", " : "", sites[i]);
    printf("\nExpires:        %s (single use)\n", expires);
    printf("Hub node id:    %s\n", me.node_id);
    printf("Hub key:        %s\n\n", me.fingerprint);
    printf("On the node, run:\n  sanad peer add --data DIR --url URL-OF-THIS-HUB --code %s --hub-key %s\n\n", code,
           me.fingerprint);
    crypto_wipe(code, sizeof(code));
    return 0;
}

static int peer_add(struct db *db, const char *dir, const char *url, const char *code, const char *name,
                    const char *hub_key, const char *self_url, int insecure)
{
    struct client_options o = { insecure, NULL };
    char fp[PEERS_FINGERPRINT_LEN];
    struct peer_row row;
    struct caller local;
    json_t *req, *answer = NULL;
    struct err e;
    int rc;

    err_clear(&e);
    caller_local(&local, "peer");
    /* checked before the code is spent */
    if (name) {
        if (peers_get_by_name(db, name, &row, &e) == 0)
            err_set(&e, ERR_CONFLICT, "peer_exists", "a peer called '%s' is already enrolled here", name);
        if (e.kind != ERR_NOT_FOUND)
            return cmd_fail(&e);
        err_clear(&e);
    }
    req = peers_enrol_request(db, dir, code, self_url, &e);
    if (req == NULL)
        return cmd_fail(&e);
    rc = client_enrol(&o, url, req, &answer, &e);
    json_decref(req);   /* it held the code: gone with it */
    if (rc < 0)
        return cmd_fail(&e);
    rc = peers_enrol_accept(db, &local, url, name, hub_key, answer, &row, &e);
    json_decref(answer);
    if (rc < 0) {
        cmd_fail(&e);
        fprintf(stderr, "sanad: the code is used up and the hub was not kept here: on the hub, remove the peer it "
                        "enrolled ('sanad peer remove') and make a new invite\n");
        return 1;
    }
    peers_fingerprint(row.public_key, fp);
    printf("Enrolled with '%s' at %s\n", row.name, row.url);
    printf("Hub node id:    %s\n", row.id);
    printf("Hub key:        %s\n", fp);
    if (hub_key == NULL)
        printf("(compare the key with the one 'sanad peer invite' printed on the hub)\n");
    return 0;
}

/* A JSON object from a small file; NULL (reported) otherwise. */
static json_t *read_json_file(const char *path, const char *what)
{
    json_error_t je;
    size_t len;
    char *text = read_file(path, 8192, &len);
    json_t *v;

    if (text == NULL) {
        fprintf(stderr, "sanad: cannot read %s '%s': %s\n", what, path,
                errno == EFBIG ? "too large" : strerror(errno));
        return NULL;
    }
    v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    crypto_wipe(text, len);
    free(text);
    if (!json_is_object(v)) {
        fprintf(stderr, "sanad: '%s' is not %s\n", path, what);
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Write a JSON object to a file (0600); 0 or -1 (reported). */
static int write_json_file(const char *path, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    int rc;

    if (text == NULL) {
        fprintf(stderr, "sanad: out of memory\n");
        return -1;
    }
    rc = cmd_write_file(path, text, strlen(text));
    crypto_wipe(text, strlen(text));
    free(text);
    return rc;
}

/* On the node, without a network: the enrolment request, to carry to the hub. */
static int peer_request(struct db *db, const char *dir, const char *code, const char *self_url, const char *out)
{
    char fp[PEERS_FINGERPRINT_LEN];
    struct node_identity me;
    json_t *req;
    struct err e;
    int rc;

    err_clear(&e);
    if (peers_identity(db, dir, &me, &e) < 0 || (req = peers_enrol_request(db, dir, code, self_url, &e)) == NULL)
        return cmd_fail(&e);
    rc = write_json_file(out, req);
    json_decref(req);
    if (rc < 0)
        return 1;
    peers_fingerprint(me.public_key, fp);
    printf("Enrolment request written to %s (it holds the one-time code: carry it by hand)\n", out);
    printf("This node:      %s (%s)\n", me.name, me.node_id);
    printf("This node's key: %s\n", fp);
    printf("(the hub's operator compares this key with the one 'sanad peer accept' prints)\n");
    return 0;
}

/* On the hub, without a network: enrol a node from its request file, and write the answer for it. */
static int peer_accept(struct db *db, const char *dir, const char *in_path, const char *out)
{
    static const char *const keys[] = { "code", "node_id", "name", "public_key", "url", NULL };
    char fp[PEERS_FINGERPRINT_LEN];
    struct peer_enrolment in;
    struct peer_row row;
    struct caller local;
    const char *key;
    json_t *req, *answer, *v;
    struct err e;
    int rc;

    err_clear(&e);
    if ((req = read_json_file(in_path, "an enrolment request")) == NULL)
        return 1;
    json_object_foreach(req, key, v)
        if (!str_in_list(key, keys) || !json_is_string(v)) {
            fprintf(stderr, "sanad: '%s' is not an enrolment request ('%.40s')\n", in_path, key);
            json_decref(req);
            return 1;
        }
    in.code = json_string_value(json_object_get(req, "code"));
    in.node_id = json_string_value(json_object_get(req, "node_id"));
    in.name = json_string_value(json_object_get(req, "name"));
    in.public_key = json_string_value(json_object_get(req, "public_key"));
    in.url = json_string_value(json_object_get(req, "url"));
    if (!in.code || !in.node_id || !in.name || !in.public_key) {
        fprintf(stderr, "sanad: '%s' is not an enrolment request (code, node_id, name and public_key)\n", in_path);
        json_decref(req);
        return 1;
    }
    caller_local(&local, "peer");
    answer = peers_enrol(db, dir, &local, &in, &e);
    if (answer == NULL) {
        json_decref(req);
        return cmd_fail(&e);
    }
    rc = write_json_file(out, answer);
    json_decref(answer);
    if (rc < 0) {
        json_decref(req);
        fprintf(stderr, "sanad: the node is enrolled here but its answer was not written: remove it ('sanad peer "
                        "remove') and make a new invite\n");
        return 1;
    }
    if (peers_get(db, in.node_id, &row, &e) < 0)
        snprintf(row.name, sizeof(row.name), "%s", in.name);
    peers_fingerprint(in.public_key, fp);
    printf("Enrolled '%s' (%s); the answer for it is in %s\n", row.name, in.node_id, out);
    printf("Its key:        %s\n", fp);
    printf("(compare it with the key 'sanad peer request' printed on that node)\n");
    json_decref(req);
    return 0;
}

/* On the node, without a network: pin the hub from its answer file. */
static int peer_add_answer(struct db *db, const char *path, const char *name, const char *hub_key)
{
    char fp[PEERS_FINGERPRINT_LEN];
    struct peer_row row;
    struct caller local;
    json_t *answer;
    struct err e;
    int rc;

    err_clear(&e);
    if ((answer = read_json_file(path, "an enrolment answer")) == NULL)
        return 1;
    caller_local(&local, "peer");
    rc = peers_enrol_accept(db, &local, NULL, name, hub_key, answer, &row, &e);
    json_decref(answer);
    if (rc < 0)
        return cmd_fail(&e);
    peers_fingerprint(row.public_key, fp);
    printf("Enrolled with '%s' (no url: bundles only, 'sanad bundle')\n", row.name);
    printf("Hub node id:    %s\n", row.id);
    printf("Hub key:        %s\n", fp);
    if (hub_key == NULL)
        printf("(compare the key with the one 'sanad peer invite' printed on the hub)\n");
    return 0;
}

static const char *json_str_or(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : dflt;
}

static int peer_list(struct db *db)
{
    json_t *items, *p, *sites, *site;
    size_t i, j;
    struct err e;

    err_clear(&e);
    items = peers_list(db, &e);
    if (items == NULL)
        return cmd_fail(&e);
    if (json_array_size(items) == 0)
        printf("no peers; enrol one with 'sanad peer invite' (hub) and 'sanad peer add' (node)\n");
    json_array_foreach(items, i, p) {
        printf("%s\n", json_str_or(p, "name", "?"));
        printf("  node id:      %s\n", json_str_or(p, "id", "?"));
        printf("  url:          %s\n", json_str_or(p, "url", "(none: it syncs with this node)"));
        printf("  key:          %s\n", json_str_or(p, "fingerprint", "?"));
        printf("  sites:        ");
        sites = json_object_get(p, "sites");
        if (!json_is_array(sites))
            printf("every site");
        json_array_foreach(sites, j, site)
            printf("%s%s", j ? ", " : "", json_string_value(site));
        printf("\n  enrolled:     %s\n", json_str_or(p, "enrolled_at", "?"));
        printf("  last attempt: %s\n", json_str_or(p, "last_attempt_at", "never"));
        printf("  last success: %s\n", json_str_or(p, "last_success_at", "never"));
        if (json_string_value(json_object_get(p, "last_error")))
            printf("  last error:   %s\n", json_str_or(p, "last_error", ""));
    }
    json_decref(items);
    return 0;
}

static int peer_remove(struct db *db, const char *name)
{
    struct caller local;
    struct err e;

    err_clear(&e);
    caller_local(&local, "peer");
    if (peers_remove(db, &local, name, &e) < 0)
        return cmd_fail(&e);
    printf("Removed peer '%s'\n", name);
    return 0;
}

int cmd_peer(int argc, char **argv)
{
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "name", required_argument, NULL, 'n' },
        { "site", required_argument, NULL, 's' },
        { "hours", required_argument, NULL, 'H' },
        { "url", required_argument, NULL, 'u' },
        { "code", required_argument, NULL, 'c' },
        { "hub-key", required_argument, NULL, 'k' },
        { "self-url", required_argument, NULL, 'S' },
        { "insecure", no_argument, NULL, 'i' },
        { "out", required_argument, NULL, 'o' },
        { "in", required_argument, NULL, 'I' },
        { "answer", required_argument, NULL, 'a' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *verb, *data = NULL, *dir, *name = NULL, *url = NULL, *code = NULL, *hub_key = NULL;
    const char *self_url = NULL, *errstr, *out = NULL, *in = NULL, *answer = NULL;
    const char *sites[USER_SITES_MAX];
    int64_t hours = PEERS_INVITE_HOURS_DEFAULT;
    int c, nsites = 0, insecure = 0, rc;
    struct db *db;
    struct err e;

    err_clear(&e);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: %s\n\n%s", usage, help);
        return argc < 2 ? 2 : 0;
    }
    verb = argv[1];
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'n': name = optarg; break;
        case 's':
            if (nsites >= USER_SITES_MAX)
                return cmd_usage_error(usage, "at most %d --site options", USER_SITES_MAX);
            sites[nsites++] = optarg;
            break;
        case 'H':
            if (parse_int64(optarg, 1, PEERS_INVITE_HOURS_MAX, &hours, &errstr) < 0)
                return cmd_usage_error(usage, "--hours '%s' is %s (1 to %d)", optarg, errstr, PEERS_INVITE_HOURS_MAX);
            break;
        case 'u': url = optarg; break;
        case 'c': code = optarg; break;
        case 'k': hub_key = optarg; break;
        case 'S': self_url = optarg; break;
        case 'i': insecure = 1; break;
        case 'o': out = optarg; break;
        case 'I': in = optarg; break;
        case 'a': answer = optarg; break;
        case 'h': printf("usage: %s\n\n%s", usage, help); return 0;
        default: return cmd_usage_error(usage, "unknown option");
        }
    }
    if (optind < argc)
        return cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if (strcmp(verb, "invite") && strcmp(verb, "add") && strcmp(verb, "list") && strcmp(verb, "remove")
        && strcmp(verb, "request") && strcmp(verb, "accept"))
        return cmd_usage_error(usage, "unknown peer command '%s'", verb);
    if ((strcmp(verb, "invite") == 0 || strcmp(verb, "remove") == 0) && name == NULL)
        return cmd_usage_error(usage, "--name is required");
    if (strcmp(verb, "add") == 0 && answer == NULL && (url == NULL || code == NULL))
        return cmd_usage_error(usage, "--url and --code are required (or --answer FILE)");
    if (strcmp(verb, "add") == 0 && answer && (url || code || self_url || insecure))
        return cmd_usage_error(usage, "--answer goes without --url, --code, --self-url and --insecure");
    if (strcmp(verb, "request") == 0 && (code == NULL || out == NULL || url || hub_key || insecure || name))
        return cmd_usage_error(usage, "request takes --code and --out (and --self-url)");
    if (strcmp(verb, "accept") == 0 && (in == NULL || out == NULL))
        return cmd_usage_error(usage, "accept takes --in and --out");
    if (strcmp(verb, "invite") != 0 && (nsites || hours != PEERS_INVITE_HOURS_DEFAULT))
        return cmd_usage_error(usage, "--site and --hours go with 'invite'");
    if (strcmp(verb, "add") != 0 && strcmp(verb, "request") != 0 && (url || code || hub_key || self_url || insecure))
        return cmd_usage_error(usage, "--url, --code, --hub-key, --self-url and --insecure go with 'add'");
    if (strcmp(verb, "add") != 0 && answer)
        return cmd_usage_error(usage, "--answer goes with 'add'");
    if (strcmp(verb, "accept") != 0 && in)
        return cmd_usage_error(usage, "--in goes with 'accept'");
    if (strcmp(verb, "request") != 0 && strcmp(verb, "accept") != 0 && out)
        return cmd_usage_error(usage, "--out goes with 'request' and 'accept'");
    if ((dir = cmd_data_dir(data)) == NULL)
        return 2;
    if (db_open(dir, 0, &db, &e) < 0)
        return cmd_fail(&e);
    if (strcmp(verb, "invite") == 0)
        rc = peer_invite(db, dir, name, sites, nsites, hours);
    else if (strcmp(verb, "add") == 0 && answer)
        rc = peer_add_answer(db, answer, name, hub_key);
    else if (strcmp(verb, "add") == 0)
        rc = peer_add(db, dir, url, code, name, hub_key, self_url, insecure);
    else if (strcmp(verb, "request") == 0)
        rc = peer_request(db, dir, code, self_url, out);
    else if (strcmp(verb, "accept") == 0)
        rc = peer_accept(db, dir, in, out);
    else if (strcmp(verb, "list") == 0)
        rc = peer_list(db);
    else
        rc = peer_remove(db, name);
    db_close(db);
    return rc;
}
