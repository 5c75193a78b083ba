/* The browser UI's files: every page of the UI is the same index.html (the UI routes
 * on the client), and its scripts, styles and fonts are files under web_dir/assets
 * whose names carry a content hash. Paths are resolved with fs_open_beneath, so that
 * nothing outside web_dir/assets can be read through /assets/. */
#include "hub/web.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/fsat.h"
#include "common/util.h"
#include "hub/auth.h"
#include "hub/http.h"
#include "hub/hub.h"

#define ASSET_MAX (32 << 20) /* the largest file served: the bundles are far smaller */

/* The UI's pages: scripts and styles only from this server; inline style attributes
 * (KaTeX and CodeMirror set them); images from anywhere (markdown may show any URL);
 * frames only from this server (the output frame below). */
#define PAGE_CSP                                                                                   \
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "                    \
    "img-src * data: blob:; font-src 'self' data:; connect-src 'self' ws: wss:; "                  \
    "frame-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "               \
    "form-action 'self'"
/* The frame HTML and JavaScript outputs run in (web/src/frame.html): anything may run
 * there, but only sandboxed on an opaque origin (the iframe's sandbox attribute, and
 * this CSP's sandbox directive should it be opened on its own), so an output can
 * never read the user's cookies or call the API as the user. */
#define FRAME_CSP                                                                                  \
    "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox allow-forms; "              \
    "default-src * data: blob: 'unsafe-inline' 'unsafe-eval'; frame-ancestors 'self'"

bool web_is_page(const char *path)
{
    static const char *const exact[] = {"/", "/tree", "/lab", "/notebooks", "/edit", "/trash"};
    for (size_t i = 0; i < ARRAY_SIZE(exact); i++)
        if (!strcmp(path, exact[i]))
            return true;
    return str_starts_with(path, "/tree/") || str_starts_with(path, "/notebooks/") ||
           str_starts_with(path, "/edit/");
}

const char *web_mime_of(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".woff2", "font/woff2"},
        {".woff", "font/woff"},
        {".ttf", "font/ttf"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(types); i++)
        if (str_ends_with(name, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

/* Reads rel beneath dir into a new buffer. Returns 0 or a negative errno (-EISDIR for
 * anything but a regular file). */
static int read_beneath(const char *dir, const char *rel, char **out, size_t *len)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    int fd = fs_open_beneath(dfd, rel, O_RDONLY, 0);
    close(dfd);
    if (fd < 0)
        return fd;
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = -EISDIR;
        goto out;
    }
    if (st.st_size > ASSET_MAX) {
        r = -EFBIG;
        goto out;
    }
    char *data = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -errno : -EIO;
            free(data);
            goto out;
        }
        got += (size_t)n;
    }
    data[got] = '\0';
    *out = data;
    *len = got;
out:
    close(fd);
    return r;
}

void web_page(struct hub *h, struct http_req *req)
{
    char *data;
    size_t len;
    if (read_beneath(h->cfg.web_dir, "index.html", &data, &len) < 0) {
        char *page = xasprintf(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>labbook</title></head>"
            "<body><main><h1>labbook</h1><p>The browser UI is not built: run <code>make "
            "build</code>, or set <code>[server] web_dir</code>. The Jupyter API works: "
            "connect JupyterLab or VS Code with a token from <code>labbook user "
            "token</code>.</p><p><a href=\"/logout\">Sign out</a></p></main></body></html>");
        http_reply(req, 200, "text/html; charset=utf-8", page, strlen(page));
        return;
    }
    http_add_header(req, "content-security-policy:", PAGE_CSP);
    auth_xsrf_refresh(req); /* the session's XSRF token, for the page's changes */
    http_reply(req, 200, "text/html; charset=utf-8", data, len);
}

/* Whether the client accepts gzip ("gzip" in Accept-Encoding, not with q=0). */
static bool takes_gzip(struct http_req *req)
{
    const char *ae = http_header(req, "accept-encoding:");
    const char *g = ae ? strstr(ae, "gzip") : NULL;
    if (!g)
        return false;
    const char *q = g + 4;
    while (*q == ' ')
        q++;
    if (*q != ';')
        return true;
    q++;
    while (*q == ' ')
        q++;
    return !(str_starts_with(q, "q=0") && !(q[3] == '.' && q[4] >= '1' && q[4] <= '9'));
}

/* An asset read on the thread pool: the notebook's chunk is hundreds of KiB, and the
 * loop never waits on a disk. */
struct asset_job {
    uv_work_t work;
    struct http_pending *p;
    char *dir, *rel;
    bool gzip_ok; /* the client takes gzip and NAME.gz may exist */
    bool gzipped; /* what was read is NAME.gz */
    char *data;
    size_t len;
    int r;
};

static void asset_work(uv_work_t *w)
{
    struct asset_job *j = w->data;
    if (j->gzip_ok) {
        char *gz = xasprintf("%s.gz", j->rel);
        j->gzipped = read_beneath(j->dir, gz, &j->data, &j->len) == 0;
        free(gz);
        if (j->gzipped)
            return;
    }
    j->r = read_beneath(j->dir, j->rel, &j->data, &j->len);
}

static void asset_done(uv_work_t *w, int status)
{
    (void)status;
    struct asset_job *j = w->data;
    struct http_req *req = http_pending_req(j->p);
    if (req && j->r == 0) {
        bool compressible = str_ends_with(j->rel, ".js") || str_ends_with(j->rel, ".css");
        http_add_header(req, "cache-control:", "public, max-age=31536000, immutable");
        if (compressible)
            http_add_header(req, "vary:", "accept-encoding");
        if (j->gzipped)
            http_add_header(req, "content-encoding:", "gzip");
        if (str_ends_with(j->rel, ".html")) {
            http_add_header(req, "content-security-policy:", FRAME_CSP);
            http_add_header(req, "x-frame-options:", "sameorigin");
        }
        http_pending_reply_raw(j->p, 200, web_mime_of(j->rel), j->data, j->len, NULL);
        j->data = NULL; /* owned by the response now */
    } else if (req) {
        http_pending_reply_error(j->p, 404, "Not Found");
    } else {
        http_pending_reply_raw(j->p, 0, NULL, NULL, 0, NULL); /* the client left */
    }
    free(j->data);
    free(j->dir);
    free(j->rel);
    free(j);
}

void web_asset(struct hub *h, struct http_req *req, const char *rest)
{
    char *rel = NULL;
    if (fs_path_normalize(rest, &rel) < 0 || !*rel) {
        free(rel);
        http_reply_error(req, 404, "Not Found");
        return;
    }
    struct asset_job *j = xcalloc(1, sizeof(*j));
    j->work.data = j;
    j->dir = xasprintf("%s/assets", h->cfg.web_dir);
    j->rel = rel;
    /* The build writes NAME.gz beside the larger scripts and styles: sent as they are
     * to clients that take gzip (the notebook's chunk is a third of its size). */
    j->gzip_ok = (str_ends_with(rel, ".js") || str_ends_with(rel, ".css")) && takes_gzip(req);
    j->p = http_defer(req);
    if (uv_queue_work(h->loop, &j->work, asset_work, asset_done) < 0) {
        asset_work(&j->work);
        asset_done(&j->work, 0);
    }
}
