/* serve.c — `sanad serve`: run the HTTP API and web app for one data directory. */
#include <getopt.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "core/util.h"
#include "http/server.h"

static const char usage[] =
    "sanad serve --data DIR [--listen 127.0.0.1:8080] [--tls-cert F --tls-key F] [--threads N]";

static const char help[] =
    "Serve the JSON API (/api/v1) and the web app. SIGINT or SIGTERM stops it cleanly after in-flight\n"
    "requests finish.\n\n"
    "  --data DIR       data directory made by 'sanad init' (default: $SANAD_DATA)\n"
    "  --listen ADDR    HOST:PORT or [IPv6]:PORT to listen on (default: 127.0.0.1:8080; port 0 = any free)\n"
    "  --tls-cert F     PEM certificate: serve HTTPS (use it whenever the network is shared)\n"
    "  --tls-key F      PEM private key for --tls-cert\n"
    "  --threads N      worker threads (default: one per CPU)\n";

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "listen", required_argument, NULL, 'l' },
        { "tls-cert", required_argument, NULL, 'c' },
        { "tls-key", required_argument, NULL, 'k' },
        { "threads", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct server_options o = { NULL, "127.0.0.1:8080", NULL, NULL, 0 };
    const char *data = NULL, *errstr;
    int64_t threads;
    struct err e;
    int c;

    err_clear(&e);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'l': o.listen = optarg; break;
        case 'c': o.tls_cert = optarg; break;
        case 'k': o.tls_key = optarg; break;
        case 't':
            if (parse_int64(optarg, 1, 256, &threads, &errstr) < 0)
                return cmd_usage_error(usage, "--threads '%s' is %s (1 to 256)", optarg, errstr);
            o.threads = (int)threads;
            break;
        case 'h': printf("usage: %s\n\n%s", usage, help); return 0;
        default: return cmd_usage_error(usage, "unknown option");
        }
    }
    if (optind < argc)
        return cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if ((o.data_dir = cmd_data_dir(data)) == NULL)
        return 2;
    return server_run(&o, &e) == 0 ? 0 : cmd_fail(&e);
}
