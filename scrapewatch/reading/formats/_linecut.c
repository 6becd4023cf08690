/* The fields of plain log lines of the line formats, cut natively: common/combined,
 * vhost_combined, AWS ALB and classic ELB. Also: a block cut into lines (lines), CSV,
 * TSV and CloudFront lines split (split), flat JSON objects read (json_cut).
 *
 * cut(offsets, data, count, mode) reads `count` lines of an Arrow string array (its
 * int32 offsets and data buffers) and returns, per line, whether it has the plain shape
 * of its format (below), and for those lines the parsed fields exactly as the format's
 * SQL gives them: '-' and '' are NULL, the target split into path and query (NULL
 * without a '?'), the time, status and size. Every other line is left to that SQL, so
 * this file only has to be right about the lines it calls plain; when in doubt, a line
 * is not plain. Lines are read as bytes; the array is valid UTF-8 and every cut falls
 * on an ASCII byte, so every field is valid UTF-8 too.
 *
 * A plain common/combined line (clf.PLAIN_REGEX, and a few more checks):
 *   host ident user [dd/Mon/yyyy:HH:MM:SS +hhmm] "METHOD /target HTTP/x" status size
 * then the end of the line, or "referer" "agent", maybe "x-forwarded-for", maybe a
 * space and unquoted fields; then \r\n, \n, \r or nothing. No field holds a quote,
 * a backslash or a control byte; the host holds no ',' or '[' (a proxy list or an
 * IPv6 literal: the SQL picks the address); the target starts with '/'; the date is a
 * real one in years 1000 to 9999, the time 00:00:00 to 23:59:59 (what strptime reads
 * identically) and the instant in 1970 to 9999 (read.EARLIEST to LATEST); the offset's
 * hours are 00-23 and minutes 00-59; the size has at most 18 digits (it fits a BIGINT).
 * vhost_combined and the AWS formats: see cut_line and cut_aws_line.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* The text fields, as Arrow string arrays; and the number fields. */
enum { CLIENT, USER, METHOD, PATH, QUERY, REFERER, AGENT, XFF, NTEXT };
static const char *const TEXT_NAMES[NTEXT] = {
    "client_ip", "user", "method", "path", "query", "referer", "user_agent", "xff"};
#define LATEST 253402300799LL /* 9999-12-31T23:59:59Z */
/* What `cut` reads: its `mode`. */
enum { CLF, VHOST, ALB, ELB };

typedef struct {
    const char *start;
    Py_ssize_t length; /* -1: NULL */
} span;

typedef struct {
    span text[NTEXT];
    int64_t micros, size; /* since the epoch; size -1: NULL */
    int16_t status;
} parsed;

/* A byte that may stand in an unquoted token: not a space, quote, backslash or control. */
static inline int token_byte(unsigned char c) {
    return c > ' ' && c != '"' && c != '\\' && c != 0x7f;
}

/* A byte that may stand inside quotes. */
static inline int quoted_byte(unsigned char c) {
    return c >= ' ' && c != '"' && c != '\\' && c != 0x7f;
}

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    const int64_t era = y / 400; /* y >= 999 here */
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int month_of(const unsigned char *p) {
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (!memcmp(p, names + 3 * i, 3)) return i + 1;
    return 0;
}

static int days_in_month(int64_t y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return days[m - 1] + (m == 2 && leap);
}

#define TWO(p) (((p)[0] - '0') * 10 + ((p)[1] - '0'))

/* "dd/Mon/yyyy:HH:MM:SS +hhmm]" (27 bytes) to epoch seconds; 0 when not plain. */
static int read_time(const unsigned char *p, int64_t *seconds) {
    static const char shape[] = "99/Aaa/9999:99:99:99 +9999]";
    for (int i = 0; i < 27; i++) {
        switch (shape[i]) {
        case '9':
            if (!is_digit(p[i])) return 0;
            break;
        case 'A': case 'a': case '+': /* the month and the sign: checked below */
            break;
        default:
            if (p[i] != shape[i]) return 0;
        }
    }
    int month = month_of(p + 3);
    int64_t year = TWO(p + 7) * 100 + TWO(p + 9);
    int day = TWO(p), hour = TWO(p + 12), minute = TWO(p + 15), second = TWO(p + 18);
    int off_hours = TWO(p + 22), off_minutes = TWO(p + 24);
    if (!month || year < 1000 || day < 1 || day > days_in_month(year, month) || hour > 23
        || minute > 59 || second > 59 || (p[21] != '+' && p[21] != '-') || off_hours > 23
        || off_minutes > 59)
        return 0;
    int64_t offset = off_hours * 3600 + off_minutes * 60;
    *seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
               - (p[21] == '-' ? -offset : offset);
    return 1;
}

/* A field that reads as NULL when it is '' or '-', as parse_sql's nullif does. */
static span or_null(const unsigned char *p, Py_ssize_t length) {
    return (span){(const char *)p, length == 0 || (length == 1 && *p == '-') ? -1 : length};
}

/* The target [p, end) as its path and query (NULL without a '?'). */
static void split_target(const unsigned char *p, const unsigned char *end, span *fields) {
    const unsigned char *mark = memchr(p, '?', end - p);
    fields[PATH] = (span){(const char *)p, (mark ? mark : end) - p};
    if (mark) fields[QUERY] = (span){(const char *)mark + 1, end - mark - 1};
}

/* Reads one line [p, end) into `out`; 1 when it is plain. With `vhost`, the line is
 * Apache's vhost_combined (regex.VHOST_COMBINED, read by base.requests_sql): a virtual
 * host token first, and, for what that SQL reads otherwise, a host '-' as NULL, no host
 * of digits, dots and a ':' (it drops a port: sw_without_port), sizes of at most 15
 * digits (it reads them as a double) and no x-forwarded-for field (it has none). */
static int cut_line(const unsigned char *p, const unsigned char *end, parsed *out,
                    int vhost) {
    span *fields = out->text;
    int64_t seconds;
    /* the line end: \r\n, \n or \r (the last line may have none) */
    if (end > p && end[-1] == '\n') end--;
    if (end > p && end[-1] == '\r') end--;
    for (int f = 0; f < NTEXT; f++) fields[f] = (span){NULL, -1};
    const unsigned char *q;
    /* (vhost) host ident user, one token each */
    for (int i = vhost ? -1 : 0; i < 3; i++) {
        q = p;
        while (q < end && token_byte(*q)) q++;
        if (q == p || q >= end || *q != ' ') return 0;
        if (i <= 0) {
            int colon = 0, numeric = 1;
            for (const unsigned char *c = p; c < q; c++) {
                if (*c == ',' || *c == '[') return 0;
                colon |= *c == ':';
                numeric &= is_digit(*c) || *c == '.' || *c == ':';
            }
            if (vhost && i == 0 && colon && numeric) return 0;
        }
        if (i == 0) {
            fields[CLIENT] = vhost ? or_null(p, q - p) : (span){(const char *)p, q - p};
        } else if (i == 2) {
            fields[USER] = or_null(p, q - p);
        }
        p = q + 1;
    }
    /* [time] */
    if (end - p < 29 || *p != '[' || !read_time(p + 1, &seconds) || p[28] != ' '
        || seconds < 0 || seconds > LATEST)
        return 0;
    out->micros = seconds * 1000000;
    p += 29;
    /* "METHOD /target HTTP/x" */
    if (p >= end || *p++ != '"') return 0;
    q = p;
    while (q < end && ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'z')) q++;
    if (q == p || q >= end || *q != ' ') return 0;
    fields[METHOD] = (span){(const char *)p, q - p};
    p = q + 1;
    q = p;
    while (q < end && token_byte(*q)) q++;
    if (q == p || *p != '/' || end - q < 7 || memcmp(q, " HTTP/", 6)) return 0;
    split_target(p, q, fields);
    p = q + 6;
    q = p;
    while (q < end && (is_digit(*q) || *q == '.')) q++;
    if (q == p || q >= end || *q != '"') return 0;
    p = q + 1;
    /* status size */
    if (end - p < 6 || p[0] != ' ' || !is_digit(p[1]) || !is_digit(p[2]) || !is_digit(p[3])
        || p[4] != ' ')
        return 0;
    out->status = (int16_t)((p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0'));
    p += 5;
    q = p;
    out->size = -1;
    if (q < end && *q == '-') {
        q++;
    } else {
        while (q < end && is_digit(*q)) q++;
        if (q == p || q - p > (vhost ? 15 : 18)) return 0;
        for (out->size = 0; p < q; p++) out->size = out->size * 10 + (*p - '0');
    }
    p = q;
    if (p == end) return 1; /* common */
    /* "referer" "agent", then maybe "x-forwarded-for" */
    for (int field = REFERER; field <= XFF; field++) {
        if (field == XFF && (end - p < 2 || p[0] != ' ' || p[1] != '"')) break;
        if (end - p < 3 || p[0] != ' ' || p[1] != '"') return 0;
        p += 2;
        q = p;
        while (q < end && quoted_byte(*q)) q++;
        if (q >= end || *q != '"') return 0;
        fields[field] = or_null(p, q - p);
        p = q + 1;
    }
    if (vhost) fields[XFF] = (span){NULL, -1};
    /* then nothing, or a space and unquoted fields (timings) */
    if (p == end) return 1;
    if (*p != ' ') return 0;
    for (p++; p < end; p++)
        if (!quoted_byte(*p)) return 0;
    return 1;
}

/* The end of the token at p: the first byte that may not stand in one. */
static const unsigned char *token_end(const unsigned char *p, const unsigned char *end) {
    while (p < end && token_byte(*p)) p++;
    return p;
}

/* "yyyy-mm-ddTHH:MM:SS[.ffffff]Z" up to `end` to microseconds since the epoch, as
 * DuckDB's cast to TIMESTAMPTZ reads it; 0 when not plain (other shapes, more than six
 * digits of fraction, a date or time that is not real, an instant outside 1970-9999). */
static int read_iso_time(const unsigned char *p, const unsigned char *end, int64_t *micros) {
    static const char shape[] = "9999-99-99T99:99:99";
    if (end - p < 20 || end[-1] != 'Z') return 0;
    for (int i = 0; i < 19; i++)
        if (shape[i] == '9' ? !is_digit(p[i]) : p[i] != shape[i]) return 0;
    int64_t year = TWO(p) * 100 + TWO(p + 2), fraction = 0;
    int month = TWO(p + 5), day = TWO(p + 8), hour = TWO(p + 11), minute = TWO(p + 14),
        second = TWO(p + 17);
    if (month < 1 || month > 12 || year < 1000 || day < 1 || day > days_in_month(year, month)
        || hour > 23 || minute > 59 || second > 59)
        return 0;
    const unsigned char *q = p + 19;
    if (q < end - 1) { /* a fraction: '.' and 1 to 6 digits */
        int digits = (int)(end - 1 - q) - 1;
        if (*q != '.' || digits < 1 || digits > 6) return 0;
        for (q++; q < end - 1; q++) {
            if (!is_digit(*q)) return 0;
            fraction = fraction * 10 + (*q - '0');
        }
        for (; digits < 6; digits++) fraction *= 10;
    }
    int64_t seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60
                      + second;
    if (seconds < 0 || seconds > LATEST) return 0;
    *micros = seconds * 1000000 + fraction;
    return 1;
}

/* "METHOD target protocol" of an AWS request up to its closing quote at `end`, as
 * regex._AWS_REQUEST and base.requests_sql read it: a method of letters, a target that
 * is a path or an absolute URL (its scheme://host dropped) then a path, and a protocol
 * token; each split by one space. 0 when not plain. */
static int read_aws_request(const unsigned char *p, const unsigned char *end, span *fields) {
    const unsigned char *q = p;
    while (q < end && ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'z')) q++;
    if (q == p || q >= end || *q != ' ') return 0;
    fields[METHOD] = (span){(const char *)p, q - p};
    p = q + 1;
    q = token_end(p, end);
    if (q == p || q >= end || *q != ' ' || token_end(q + 1, end) != end) return 0;
    if (*p != '/') { /* scheme://host, then the path */
        const unsigned char *c = p;
        if (!((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z')) return 0;
        while (c < q && (((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z') || is_digit(*c)
                         || *c == '+' || *c == '.' || *c == '-'))
            c++;
        if (q - c < 3 || memcmp(c, "://", 3)) return 0;
        for (c += 3; c < q && *c != '/' && *c != '?'; c++) {}
        if (c == q || *c != '/') return 0;
        p = c;
    }
    split_target(p, q, fields);
    return 1;
}

/* Reads one AWS ALB (`alb`) or classic ELB line [p, end) into `out`, as regex.ALB and
 * regex.ELB with base.requests_sql read it; 1 when it is plain:
 *   [type] time elb client[:port] target t1 t2 t3 status target_status received sent
 *   "METHOD target protocol" "agent" ...
 * the type one of ALB's, the time "yyyy-mm-ddTHH:MM:SS[.ffffff]Z", each other field one
 * token (no quote, backslash or control byte), the client without a port not '-', not
 * bracketed and, with a colon, not only digits, dots and colons (the SQL's
 * sw_without_port reads those); a 3-digit status; sizes of digits (at most 15: the SQL
 * reads them as doubles) or '-'. ALB's agent is there, ELB's may be; whatever follows is
 * not read. */
static int cut_aws_line(const unsigned char *p, const unsigned char *end, parsed *out,
                        int alb) {
    span *fields = out->text;
    for (int f = 0; f < NTEXT; f++) fields[f] = (span){NULL, -1};
    const unsigned char *q;
    if (alb) {
        static const char *const types[] = {"http ", "https ", "h2 ", "grpc ", "grpcs ",
                                            "ws ", "wss "};
        size_t i = 0, n = 0;
        for (; i < sizeof types / sizeof *types; i++) {
            n = strlen(types[i]);
            if ((size_t)(end - p) >= n && !memcmp(p, types[i], n)) break;
        }
        if (i == sizeof types / sizeof *types) return 0;
        p += n;
    }
    /* time elb client target t1 t2 t3 status target_status received sent */
    for (int i = 0; i < 11; i++) {
        q = token_end(p, end);
        if (q == p || q >= end || *q != ' ') return 0;
        if (i == 0 && !read_iso_time(p, q, &out->micros)) return 0;
        if (i == 2) { /* the client, less a ":port" */
            const unsigned char *c = q, *colon = NULL;
            while (c > p && is_digit(c[-1])) c--;
            if (c < q && c > p && c[-1] == ':') colon = c - 1;
            const unsigned char *host_end = colon ? colon : q;
            int has_colon = 0, numeric = 1;
            for (c = p; c < host_end; c++) {
                if (*c == '[') return 0;
                has_colon |= *c == ':';
                numeric &= is_digit(*c) || *c == '.' || *c == ':';
            }
            if (host_end == p || (host_end - p == 1 && *p == '-') || (has_colon && numeric))
                return 0;
            fields[CLIENT] = (span){(const char *)p, host_end - p};
        }
        if (i == 7) {
            if (q - p != 3 || !is_digit(p[0]) || !is_digit(p[1]) || !is_digit(p[2])) return 0;
            out->status = (int16_t)((p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0'));
        }
        if (i >= 9) { /* received and sent: digits or '-' */
            int64_t size = -1;
            if (!(q - p == 1 && *p == '-')) {
                if (q - p > 15) return 0;
                for (size = 0; p < q; p++) {
                    if (!is_digit(*p)) return 0;
                    size = size * 10 + (*p - '0');
                }
            }
            if (i == 10) out->size = size;
        }
        p = q + 1;
    }
    /* "METHOD target protocol" */
    if (p >= end || *p != '"') return 0;
    q = p + 1;
    while (q < end && *q != '"') q++;
    if (q >= end || !read_aws_request(p + 1, q, fields)) return 0;
    p = q + 1;
    /* "agent" */
    if (end - p >= 2 && p[0] == ' ' && p[1] == '"') {
        p += 2;
        q = p;
        while (q < end && quoted_byte(*q)) q++;
        if (q >= end || *q != '"') return 0;
        fields[AGENT] = or_null(p, q - p);
    } else if (alb) {
        return 0;
    }
    return 1;
}

/* A new bytes object of `size` bytes, zeroed (validity bitmaps start all NULL). */
static PyObject *zeroed(Py_ssize_t size) {
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, size);
    if (bytes) memset(PyBytes_AS_STRING(bytes), 0, size);
    return bytes;
}

#define SET_BIT(bitmap, i) ((bitmap)[(i) >> 3] |= (uint8_t)(1u << ((i) & 7)))
#define GET_BIT(bitmap, i) (((bitmap)[(i) >> 3] >> ((i) & 7)) & 1)

/* A text field of the cut's output: its validity, offsets and data. */
typedef struct {
    const uint8_t *valid;
    const int32_t *offsets;
    const char *data;
} column;

/* Mixes the field's validity and bytes into `h`, 8 bytes at a time (ids= lists run to
 * kilobytes). Equal fields hash equal; same_field tells the rest apart. */
static uint64_t hash_field(uint64_t h, column c, Py_ssize_t i) {
    const unsigned char *p = (const unsigned char *)c.data + c.offsets[i];
    int32_t left = c.offsets[i + 1] - c.offsets[i];
    h = (h ^ (uint64_t)(GET_BIT(c.valid, i) + 2 * (uint64_t)left)) * 0x9e3779b97f4a7c15ULL;
    for (; left >= 8; p += 8, left -= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        h = (h ^ word) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, (size_t)left);
    h = (h ^ tail) * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 32);
}

static int same_field(column c, Py_ssize_t i, Py_ssize_t j) {
    int32_t length = c.offsets[i + 1] - c.offsets[i];
    return GET_BIT(c.valid, i) == GET_BIT(c.valid, j)
           && length == c.offsets[j + 1] - c.offsets[j]
           && !memcmp(c.data + c.offsets[i], c.data + c.offsets[j], length);
}

/* Number the distinct (path, query) of the plain lines in order of first sight: pair[i]
 * (-1 for a line not plain), and first[n] the line where pair n is first seen. Posts
 * depend on the path and query alone, so SQL works them out once per pair. Returns the
 * number of pairs, or -1 when out of memory. */
static Py_ssize_t number_pairs(Py_ssize_t count, const uint8_t *is_plain, column path,
                               column query, int32_t *pair, int32_t *first) {
    size_t slots = 16;
    while (slots < 2 * (size_t)count) slots *= 2;
    int32_t *table = PyMem_RawMalloc(slots * sizeof(int32_t)); /* a pair's number, or -1 */
    if (!table) return -1;
    memset(table, 0xff, slots * sizeof(int32_t));
    Py_ssize_t pairs = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        pair[i] = -1;
        if (!is_plain[i]) continue;
        size_t slot = hash_field(hash_field(0xcbf29ce484222325ULL, path, i), query, i);
        for (;; slot++) {
            slot &= slots - 1;
            int32_t n = table[slot];
            if (n < 0) {
                table[slot] = (int32_t)pairs;
                first[pairs] = (int32_t)i;
                pair[i] = (int32_t)pairs++;
                break;
            }
            if (same_field(path, first[n], i) && same_field(query, first[n], i)) {
                pair[i] = n;
                break;
            }
        }
    }
    PyMem_RawFree(table);
    return pairs;
}

/* Whether `count` lines' int32 offsets fit the data buffer (ValueError when not). */
static int offsets_fit(const Py_buffer *offsets_view, const Py_buffer *data_view,
                       Py_ssize_t count) {
    const int32_t *offsets = offsets_view->buf;
    if (count < 0 || offsets_view->len < (count + 1) * (Py_ssize_t)sizeof(int32_t)
        || (count && (offsets[0] < 0 || offsets[count] > data_view->len
                      || offsets[count] < offsets[0]))) {
        PyErr_SetString(PyExc_ValueError, "offsets do not fit the data");
        return 0;
    }
    return 1;
}

static PyObject *cut(PyObject *self, PyObject *args) {
    Py_buffer offsets_view, data_view;
    Py_ssize_t count;
    int mode = CLF;
    if (!PyArg_ParseTuple(args, "y*y*n|i", &offsets_view, &data_view, &count, &mode))
        return NULL;
    PyObject *result = NULL, *plain = NULL, *micros = NULL, *statuses = NULL, *sizes = NULL,
             *sizes_valid = NULL, *pairs = NULL, *firsts = NULL;
    PyObject *valid[NTEXT] = {0}, *text_offsets[NTEXT] = {0}, *text_data[NTEXT] = {0};
    const int32_t *offsets = offsets_view.buf;
    const unsigned char *data = data_view.buf;
    if (mode < CLF || mode > ELB) {
        PyErr_SetString(PyExc_ValueError, "mode must be 0 (common/combined), 1 "
                                          "(vhost_combined), 2 (ALB) or 3 (ELB)");
        goto done;
    }
    if (!offsets_fit(&offsets_view, &data_view, count)) goto done;
    Py_ssize_t total = count ? offsets[count] - offsets[0] : 0, bitmap = (count + 7) / 8;
    plain = PyBytes_FromStringAndSize(NULL, count);
    micros = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int64_t));
    statuses = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int16_t));
    sizes = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int64_t));
    sizes_valid = zeroed(bitmap);
    pairs = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int32_t));
    firsts = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int32_t));
    if (!plain || !micros || !statuses || !sizes || !sizes_valid || !pairs || !firsts)
        goto done;
    for (int f = 0; f < NTEXT; f++) {
        valid[f] = zeroed(bitmap);
        text_offsets[f] = PyBytes_FromStringAndSize(NULL, (count + 1) * sizeof(int32_t));
        text_data[f] = PyBytes_FromStringAndSize(NULL, total);
        if (!valid[f] || !text_offsets[f] || !text_data[f]) goto done;
    }
    uint8_t *is_plain = (uint8_t *)PyBytes_AS_STRING(plain);
    int64_t *out_micros = (int64_t *)PyBytes_AS_STRING(micros);
    int16_t *out_status = (int16_t *)PyBytes_AS_STRING(statuses);
    int64_t *out_size = (int64_t *)PyBytes_AS_STRING(sizes);
    uint8_t *size_valid = (uint8_t *)PyBytes_AS_STRING(sizes_valid);
    uint8_t *out_valid[NTEXT];
    int32_t *out_offsets[NTEXT];
    char *out_data[NTEXT];
    int32_t used[NTEXT] = {0};
    for (int f = 0; f < NTEXT; f++) {
        out_valid[f] = (uint8_t *)PyBytes_AS_STRING(valid[f]);
        out_offsets[f] = (int32_t *)PyBytes_AS_STRING(text_offsets[f]);
        out_data[f] = PyBytes_AS_STRING(text_data[f]);
        out_offsets[f][0] = 0;
    }
    int bad = 0;
    Py_ssize_t pair_count = 0;
    Py_BEGIN_ALLOW_THREADS
    parsed line;
    for (Py_ssize_t i = 0; i < count; i++) {
        int32_t start = offsets[i], stop = offsets[i + 1];
        if (stop < start) {
            bad = 1;
            break;
        }
        memset(&line, 0, sizeof line);
        is_plain[i] = (uint8_t)(mode == ALB || mode == ELB
                                    ? cut_aws_line(data + start, data + stop, &line, mode == ALB)
                                    : cut_line(data + start, data + stop, &line, mode == VHOST));
        out_micros[i] = line.micros;
        out_status[i] = line.status;
        out_size[i] = line.size;
        if (is_plain[i] && line.size >= 0) SET_BIT(size_valid, i);
        for (int f = 0; f < NTEXT; f++) {
            span field = line.text[f];
            if (is_plain[i] && field.length >= 0) {
                SET_BIT(out_valid[f], i);
                memcpy(out_data[f] + used[f], field.start, field.length);
                used[f] += (int32_t)field.length;
            }
            out_offsets[f][i + 1] = used[f];
        }
    }
    if (!bad) {
        column path = {out_valid[PATH], out_offsets[PATH], out_data[PATH]};
        column query = {out_valid[QUERY], out_offsets[QUERY], out_data[QUERY]};
        pair_count = number_pairs(count, is_plain, path, query,
                                  (int32_t *)PyBytes_AS_STRING(pairs),
                                  (int32_t *)PyBytes_AS_STRING(firsts));
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "offsets go backwards");
        goto done;
    }
    if (pair_count < 0) {
        PyErr_NoMemory();
        goto done;
    }
    if (_PyBytes_Resize(&firsts, pair_count * (Py_ssize_t)sizeof(int32_t))) goto done;
    result = Py_BuildValue("{sOsOsOs(OO)sOsO}", "plain", plain, "ts", micros, "status",
                           statuses, "bytes", sizes_valid, sizes, "pair", pairs, "pair_first",
                           firsts);
    if (!result) goto done;
    for (int f = 0; f < NTEXT; f++) {
        if (_PyBytes_Resize(&text_data[f], used[f])) goto fail;
        PyObject *triple = Py_BuildValue("(OOO)", valid[f], text_offsets[f], text_data[f]);
        if (!triple || PyDict_SetItemString(result, TEXT_NAMES[f], triple)) {
            Py_XDECREF(triple);
            goto fail;
        }
        Py_DECREF(triple);
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    Py_XDECREF(plain);
    Py_XDECREF(micros);
    Py_XDECREF(statuses);
    Py_XDECREF(sizes);
    Py_XDECREF(sizes_valid);
    Py_XDECREF(pairs);
    Py_XDECREF(firsts);
    for (int f = 0; f < NTEXT; f++) {
        Py_XDECREF(valid[f]);
        Py_XDECREF(text_offsets[f]);
        Py_XDECREF(text_data[f]);
    }
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&data_view);
    return result;
}

/* Splits a line [p, end) at `delimiter`, the line end (every trailing \r and \n) left
 * out, as tables.delimited_sql and w3c.block_sql split CSV, TSV and CloudFront lines:
 * with `quoting`, a value may be quoted ("" for a quote inside; delimiters inside are
 * text), and the value keeps its quotes. Sets spans[slot[k]] to the k-th value for the
 * k < `slots` with slot[k] >= 0; values past the last are NULL. Returns the number of
 * values, or -1 when the line is not plain: blank (what the SQL reads as a blank line),
 * or with a quote the SQL's tokenising regex could read otherwise (one not at the
 * start of a value, or a quoted part not closed right before a delimiter or the end). */
static Py_ssize_t split_line(const unsigned char *p, const unsigned char *end,
                             unsigned char delimiter, int quoting, const int32_t *slot,
                             Py_ssize_t slots, span *spans) {
    while (end > p && (end[-1] == '\n' || end[-1] == '\r')) end--;
    const unsigned char *c = p;
    while (c < end && (*c == ' ' || *c == '\t')) c++;
    if (c == end) return -1;
    Py_ssize_t k = 0;
    for (;; k++) {
        const unsigned char *q = p;
        if (quoting && q < end && *q == '"') {
            for (q++;; q += 2) {
                while (q < end && *q != '"') q++;
                if (q + 1 >= end || q[1] != '"') break;
            }
            if (q >= end) return -1;
            q++;
            if (q < end && *q != delimiter) return -1;
        } else {
            while (q < end && *q != delimiter) {
                if (quoting && *q == '"') return -1;
                q++;
            }
        }
        if (k < slots && slot[k] >= 0) spans[slot[k]] = (span){(const char *)p, q - p};
        if (q == end) return k + 1;
        p = q + 1;
    }
}

static PyObject *split(PyObject *self, PyObject *args) {
    Py_buffer offsets_view, data_view, wanted_view;
    Py_ssize_t count, expected;
    int delimiter, quoting;
    if (!PyArg_ParseTuple(args, "y*y*nCpny*", &offsets_view, &data_view, &count, &delimiter,
                          &quoting, &expected, &wanted_view))
        return NULL;
    PyObject *result = NULL, *plain = NULL, *fields = NULL;
    const int32_t *offsets = offsets_view.buf, *wanted = wanted_view.buf;
    const unsigned char *data = data_view.buf;
    Py_ssize_t nwanted = wanted_view.len / (Py_ssize_t)sizeof(int32_t), slots = 0;
    int32_t *slot = NULL;
    span *spans = NULL;
    uint8_t *valid[64];
    int32_t *out_offsets[64], used[64] = {0};
    char *out_data[64];
    PyObject *value_valid[64] = {0}, *value_offsets[64] = {0}, *value_data[64] = {0};
    if (nwanted > 64 || delimiter > 127) {
        PyErr_SetString(PyExc_ValueError, "at most 64 values, split at an ASCII delimiter");
        goto done;
    }
    if (!offsets_fit(&offsets_view, &data_view, count)) goto done;
    for (Py_ssize_t w = 0; w < nwanted; w++) {
        if (wanted[w] < 0) {
            PyErr_SetString(PyExc_ValueError, "a value's index is negative");
            goto done;
        }
        if (wanted[w] >= slots) slots = wanted[w] + 1;
    }
    slot = PyMem_Malloc((slots + 1) * sizeof(int32_t));
    spans = PyMem_Malloc((nwanted + 1) * sizeof(span));
    if (!slot || !spans) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < slots; k++) slot[k] = -1;
    for (Py_ssize_t w = 0; w < nwanted; w++) slot[wanted[w]] = (int32_t)w;
    Py_ssize_t total = count ? offsets[count] - offsets[0] : 0, bitmap = (count + 7) / 8;
    plain = PyBytes_FromStringAndSize(NULL, count);
    fields = PyList_New(nwanted);
    if (!plain || !fields) goto done;
    for (Py_ssize_t w = 0; w < nwanted; w++) {
        value_valid[w] = zeroed(bitmap);
        value_offsets[w] = PyBytes_FromStringAndSize(NULL, (count + 1) * sizeof(int32_t));
        value_data[w] = PyBytes_FromStringAndSize(NULL, total);
        if (!value_valid[w] || !value_offsets[w] || !value_data[w]) goto done;
        valid[w] = (uint8_t *)PyBytes_AS_STRING(value_valid[w]);
        out_offsets[w] = (int32_t *)PyBytes_AS_STRING(value_offsets[w]);
        out_data[w] = PyBytes_AS_STRING(value_data[w]);
        out_offsets[w][0] = 0;
    }
    uint8_t *is_plain = (uint8_t *)PyBytes_AS_STRING(plain);
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        int32_t start = offsets[i], stop = offsets[i + 1];
        if (stop < start) {
            bad = 1;
            break;
        }
        for (Py_ssize_t w = 0; w < nwanted; w++) spans[w] = (span){NULL, -1};
        Py_ssize_t values = split_line(data + start, data + stop, (unsigned char)delimiter,
                                       quoting, slot, slots, spans);
        is_plain[i] = values >= 0 && (expected < 0 || values == expected);
        for (Py_ssize_t w = 0; w < nwanted; w++) {
            if (is_plain[i] && spans[w].length >= 0) {
                SET_BIT(valid[w], i);
                memcpy(out_data[w] + used[w], spans[w].start, spans[w].length);
                used[w] += (int32_t)spans[w].length;
            }
            out_offsets[w][i + 1] = used[w];
        }
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "offsets go backwards");
        goto done;
    }
    for (Py_ssize_t w = 0; w < nwanted; w++) {
        if (_PyBytes_Resize(&value_data[w], used[w])) goto done;
        PyObject *triple = PyTuple_Pack(3, value_valid[w], value_offsets[w], value_data[w]);
        if (!triple) goto done;
        PyList_SET_ITEM(fields, w, triple);
    }
    result = Py_BuildValue("{sOsO}", "plain", plain, "values", fields);
done:
    for (Py_ssize_t w = 0; w < nwanted && w < 64; w++) {
        Py_XDECREF(value_valid[w]);
        Py_XDECREF(value_offsets[w]);
        Py_XDECREF(value_data[w]);
    }
    Py_XDECREF(plain);
    Py_XDECREF(fields);
    PyMem_Free(slot);
    PyMem_Free(spans);
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&data_view);
    PyBuffer_Release(&wanted_view);
    return result;
}

/* The length of the UTF-8 sequence at p (end - p > 0 bytes, p[0] not ASCII), 0 when it
 * is not valid: what Arrow's UTF-8 validation accepts (no overlong forms, surrogates or
 * code points past U+10FFFF). */
static Py_ssize_t utf8_sequence(const unsigned char *p, Py_ssize_t left) {
    unsigned char c = p[0];
    Py_ssize_t length = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                        : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!length || left < length) return 0;
    for (Py_ssize_t k = 1; k < length; k++)
        if ((p[k] & 0xC0) != 0x80) return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F)
        || (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
        return 0;
    return length;
}

/* lines(data): see methods[]. One pass: 8 bytes at a time while they hold no newline
 * and no byte past ASCII, else byte by byte. */
static PyObject *lines(PyObject *self, PyObject *args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view)) return NULL;
    const unsigned char *data = view.buf;
    Py_ssize_t size = view.len, count = 0, room = 1024, at = 0;
    int32_t *ends = NULL;
    int valid = 1, memory = 0;
    PyObject *result = NULL;
    if (size > INT32_MAX) { /* Arrow's int32 offsets cannot point past it */
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (!(ends = PyMem_RawMalloc((room + 2) * sizeof(int32_t)))) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    ends[0] = 0;
    while (at < size) {
        if (size - at >= 8) {
            uint64_t word, newline;
            memcpy(&word, data + at, 8);
            newline = word ^ 0x0A0A0A0A0A0A0A0AULL;
            newline = (newline - 0x0101010101010101ULL) & ~newline;
            if (!((word | newline) & 0x8080808080808080ULL)) {
                at += 8;
                continue;
            }
        }
        if (data[at] == '\n') {
            if (count == room) {
                int32_t *more = PyMem_RawRealloc(ends, (2 * room + 2) * sizeof(int32_t));
                if (!more) {
                    memory = 1;
                    break;
                }
                ends = more;
                room *= 2;
            }
            ends[++count] = (int32_t)(at + 1);
            at++;
        } else if (data[at] < 0x80) {
            at++;
        } else {
            Py_ssize_t length = utf8_sequence(data + at, size - at);
            if (!length) {
                valid = 0;
                break;
            }
            at += length;
        }
    }
    if (!memory && valid && (count == 0 || ends[count] != size)) ends[++count] = (int32_t)size;
    Py_END_ALLOW_THREADS
    if (memory)
        PyErr_NoMemory();
    else if (!valid)
        result = Py_NewRef(Py_None);
    else
        result = PyBytes_FromStringAndSize((const char *)ends, (count + 1) * sizeof(int32_t));
done:
    PyMem_RawFree(ends);
    PyBuffer_Release(&view);
    return result;
}

/* JSON lines (jsonl.read_block's native part): a line that is one flat JSON object. */

/* A growing byte buffer. */
typedef struct {
    char *bytes;
    Py_ssize_t used, room;
} growing;

static int grow_to(growing *b, Py_ssize_t size) {
    if (size <= b->room) return 1;
    Py_ssize_t room = b->room ? b->room : 1 << 16;
    while (room < size) room *= 2;
    char *more = PyMem_RawRealloc(b->bytes, room);
    if (!more) return 0;
    b->bytes = more;
    b->room = room;
    return 1;
}

#define MAX_KEYS 128
#define KEY_SLOTS 512 /* a power of two, at least 2 * MAX_KEYS */

/* The keys asked for, by hash: slot -> key index + 1 (0: empty). */
typedef struct {
    const unsigned char *name[MAX_KEYS];
    Py_ssize_t length[MAX_KEYS];
    int16_t slot[KEY_SLOTS];
} key_table;

static uint32_t key_hash(const unsigned char *p, Py_ssize_t n) {
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static int find_key(const key_table *keys, const unsigned char *p, Py_ssize_t n) {
    for (uint32_t s = key_hash(p, n) & (KEY_SLOTS - 1);; s = (s + 1) & (KEY_SLOTS - 1)) {
        int k = keys->slot[s] - 1;
        if (k < 0) return -1;
        if (keys->length[k] == n && !memcmp(keys->name[k], p, n)) return k;
    }
}

static inline const unsigned char *json_space(const unsigned char *p, const unsigned char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
    return p;
}

static inline int is_hex(unsigned char c) {
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* The end of the JSON string whose opening quote is at p (after its closing quote), or
 * NULL when it is not valid JSON (a control byte, a bad escape, no closing quote).
 * *escaped says whether it holds a backslash. */
static const unsigned char *json_string(const unsigned char *p, const unsigned char *end,
                                        int *escaped) {
    *escaped = 0;
    for (p++; p < end; p++) {
        if (*p == '"') return p + 1;
        if (*p < 0x20) return NULL;
        if (*p == '\\') {
            *escaped = 1;
            if (++p >= end) return NULL;
            if (*p == 'u') {
                if (end - p < 5 || !is_hex(p[1]) || !is_hex(p[2]) || !is_hex(p[3])
                    || !is_hex(p[4]))
                    return NULL;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return NULL;
            }
        }
    }
    return NULL;
}

/* The end of the JSON number at p, or NULL when there is none; *integer says whether
 * it is a plain integer of at most 18 digits (what a BIGINT holds, which DuckDB's JSON
 * functions print as written: not -0, which they print as 0). */
static const unsigned char *json_number(const unsigned char *p, const unsigned char *end,
                                        int *integer) {
    const unsigned char *q = p;
    if (q < end && *q == '-') q++;
    const unsigned char *digits = q;
    if (q < end && *q == '0') q++;
    else while (q < end && is_digit(*q)) q++;
    if (q == digits) return NULL;
    *integer = q - digits <= 18 && !(q - digits == 1 && *digits == '0' && digits > p);
    if (q < end && *q == '.') {
        *integer = 0;
        const unsigned char *f = ++q;
        while (q < end && is_digit(*q)) q++;
        if (q == f) return NULL;
    }
    if (q < end && (*q | 0x20) == 'e') {
        *integer = 0;
        q++;
        if (q < end && (*q == '+' || *q == '-')) q++;
        const unsigned char *e = q;
        while (q < end && is_digit(*q)) q++;
        if (q == e) return NULL;
    }
    return q;
}

static int literal(const unsigned char *p, const unsigned char *end, const char *word) {
    size_t n = strlen(word);
    return (size_t)(end - p) >= n && !memcmp(p, word, n);
}

/* One line as a flat JSON object: the keys asked for that it holds with a value
 * (found[0..n), n returned) and their values (spans[k]); -1 when the line is not plain.
 * Plain: `{"key": value, ...}` with white space anywhere JSON allows it, every value a
 * string, number, true, false or null, no key twice, no key with a backslash; and each
 * value of a key asked for a string with no backslash, not starting with '{'
 * (jsonl.parse_sql reads those as no value), or an integer of at most 18 digits, or
 * null. Anything else (nesting, escapes in a value read, invalid JSON, a blank line)
 * is left to the SQL. */
static int cut_json_line(const unsigned char *p, const unsigned char *end,
                         const key_table *keys, span *spans, int *found) {
    uint8_t seen[MAX_KEYS];
    int n = 0, any = 0;
    p = json_space(p, end);
    if (p >= end || *p != '{') return -1;
    p = json_space(p + 1, end);
    if (p < end && *p == '}') return json_space(p + 1, end) == end ? 0 : -1;
    for (;;) {
        int escaped, integer;
        if (p >= end || *p != '"') return -1;
        const unsigned char *key_end = json_string(p, end, &escaped);
        if (!key_end || escaped) return -1;
        int k = find_key(keys, p + 1, key_end - p - 2);
        if (k >= 0) { /* seen[] is set up on the first key asked for */
            if (!any) {
                memset(seen, 0, sizeof seen);
                any = 1;
            }
            if (seen[k]) return -1;
            seen[k] = 1;
        }
        p = json_space(key_end, end);
        if (p >= end || *p != ':') return -1;
        p = json_space(p + 1, end);
        if (p >= end) return -1;
        const unsigned char *value = p;
        if (*p == '"') {
            p = json_string(p, end, &escaped);
            if (!p) return -1;
            if (k >= 0) {
                if (escaped || (p - value > 2 && value[1] == '{')) return -1;
                spans[k] = (span){(const char *)value + 1, p - value - 2};
                found[n++] = k;
            }
        } else if (*p == '-' || is_digit(*p)) {
            p = json_number(p, end, &integer);
            if (!p || (k >= 0 && !integer)) return -1;
            if (k >= 0) {
                spans[k] = (span){(const char *)value, p - value};
                found[n++] = k;
            }
        } else if (literal(p, end, "null")) {
            p += 4;
        } else if (k < 0 && literal(p, end, "true")) {
            p += 4;
        } else if (k < 0 && literal(p, end, "false")) {
            p += 5;
        } else {
            return -1; /* an object or array, true or false read, or no JSON value */
        }
        p = json_space(p, end);
        if (p < end && *p == ',') {
            p = json_space(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') return json_space(p + 1, end) == end ? n : -1;
        return -1;
    }
}

/* One key's values as an Arrow string array being built, and its times. */
typedef struct {
    growing valid, ends, text, micros;
    Py_ssize_t filled; /* lines whose end offset is written */
    int32_t used;      /* text bytes */
    int times;         /* every value so far a plain ISO time (keys holding times) */
} key_column;

/* Writes the end offsets of `column`'s lines up to `line` (exclusive): no value. */
static void fill_ends(key_column *column, Py_ssize_t line) {
    int32_t *ends = (int32_t *)column->ends.bytes;
    for (; column->filled < line; column->filled++) ends[column->filled + 1] = column->used;
}

/* Adds the value of line `i` to `column` (set up on its first value); 0 when out of
 * memory. */
static int add_value(key_column *column, span value, Py_ssize_t i, Py_ssize_t count) {
    Py_ssize_t bitmap = (count + 7) / 8;
    if (!column->valid.bytes) {
        if (!grow_to(&column->valid, bitmap) || !grow_to(&column->ends, (count + 1) * 4)
            || (column->times && !grow_to(&column->micros, count * 8)))
            return 0;
        memset(column->valid.bytes, 0, bitmap);
        if (column->times) memset(column->micros.bytes, 0, count * 8); /* NULLs: 0 */
        ((int32_t *)column->ends.bytes)[0] = 0;
    }
    fill_ends(column, i);
    if (value.length && !grow_to(&column->text, column->used + value.length)) return 0;
    if (value.length) memcpy(column->text.bytes + column->used, value.start, value.length);
    column->used += (int32_t)value.length;
    SET_BIT((uint8_t *)column->valid.bytes, i);
    if (column->times) {
        const unsigned char *v = (const unsigned char *)value.start;
        column->times = read_iso_time(v, v + value.length, (int64_t *)column->micros.bytes + i);
    }
    fill_ends(column, i + 1);
    return 1;
}

/* json_cut(offsets, data, count, keys, times): see methods[]. */
static PyObject *json_cut(PyObject *self, PyObject *args) {
    Py_buffer offsets_view, data_view;
    Py_ssize_t count;
    PyObject *key_list, *times_list;
    if (!PyArg_ParseTuple(args, "y*y*nO!O!", &offsets_view, &data_view, &count, &PyList_Type,
                          &key_list, &PyList_Type, &times_list))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t nkeys = PyList_GET_SIZE(key_list);
    key_table *keys = PyMem_Calloc(1, sizeof(key_table));
    key_column *columns = PyMem_Calloc(MAX_KEYS, sizeof(key_column));
    span spans[MAX_KEYS];
    int found[MAX_KEYS];
    const int32_t *offsets = offsets_view.buf;
    const unsigned char *data = data_view.buf;
    if (!keys || !columns) {
        PyErr_NoMemory();
        goto done;
    }
    if (nkeys > MAX_KEYS || PyList_GET_SIZE(times_list) != nkeys) {
        PyErr_SetString(PyExc_ValueError, "at most 128 keys, each with a times flag");
        goto done;
    }
    if (!offsets_fit(&offsets_view, &data_view, count)) goto done;
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        PyObject *name = PyList_GET_ITEM(key_list, k);
        if (!PyBytes_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "keys must be bytes");
            goto done;
        }
        keys->name[k] = (const unsigned char *)PyBytes_AS_STRING(name);
        keys->length[k] = PyBytes_GET_SIZE(name);
        uint32_t s = key_hash(keys->name[k], keys->length[k]) & (KEY_SLOTS - 1);
        while (keys->slot[s]) s = (s + 1) & (KEY_SLOTS - 1);
        keys->slot[s] = (int16_t)(k + 1);
        columns[k].times = PyObject_IsTrue(PyList_GET_ITEM(times_list, k));
    }
    int bad = 0, plain = 1, memory = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count && plain && !memory; i++) {
        int32_t start = offsets[i], stop = offsets[i + 1];
        if (stop < start) {
            bad = 1;
            break;
        }
        int n = cut_json_line(data + start, data + stop, keys, spans, found);
        plain = n >= 0;
        for (int f = 0; f < n && !memory; f++)
            memory = !add_value(&columns[found[f]], spans[found[f]], i, count);
    }
    for (Py_ssize_t k = 0; k < nkeys; k++)
        if (columns[k].valid.bytes) fill_ends(&columns[k], count);
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "offsets go backwards");
        goto done;
    }
    if (memory) {
        PyErr_NoMemory();
        goto done;
    }
    if (!plain) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = PyDict_New();
    for (Py_ssize_t k = 0; k < nkeys && result; k++) {
        key_column *c = &columns[k];
        if (!c->valid.bytes) continue;
        PyObject *times = c->times ? PyBytes_FromStringAndSize(c->micros.bytes, count * 8)
                                   : Py_NewRef(Py_None);
        PyObject *column = times ? Py_BuildValue("(y#y#y#N)", c->valid.bytes, (count + 7) / 8,
                                                 c->ends.bytes, (count + 1) * 4,
                                                 c->text.bytes ? c->text.bytes : "",
                                                 (Py_ssize_t)c->used, times)
                                 : NULL;
        if (!column || PyDict_SetItem(result, PyList_GET_ITEM(key_list, k), column))
            Py_CLEAR(result);
        Py_XDECREF(column);
    }
done:
    for (Py_ssize_t k = 0; columns && k < MAX_KEYS; k++) {
        PyMem_RawFree(columns[k].valid.bytes);
        PyMem_RawFree(columns[k].ends.bytes);
        PyMem_RawFree(columns[k].text.bytes);
        PyMem_RawFree(columns[k].micros.bytes);
    }
    PyMem_Free(keys);
    PyMem_Free(columns);
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&data_view);
    return result;
}

static PyMethodDef methods[] = {
    {"cut", cut, METH_VARARGS,
     "cut(offsets, data, count, mode=0) -> dict: per line of an Arrow string array, "
     "whether it is a plain line of the format `mode` (0 common/combined, 1 vhost_combined, "
     "2 AWS ALB, 3 classic ELB) ('plain': bytes of 0/1), and its parsed fields, NULL for "
     "the other lines: 'ts' (microseconds since the epoch, int64), 'status' (int16), "
     "'bytes' (validity bitmap, int64) and per text field (validity bitmap, int32 "
     "offsets, data) of an Arrow string array; 'pair' (int32, -1 for a line not plain) "
     "numbers the distinct (path, query) of the plain lines, first seen at lines "
     "'pair_first' (int32)."},
    {"split", split, METH_VARARGS,
     "split(offsets, data, count, delimiter, quoting, expected, wanted) -> dict: per line "
     "of an Arrow string array, whether it is plain ('plain': bytes of 0/1): not blank, "
     "its quotes (with `quoting`) only around whole values, and `expected` values "
     "(any number when -1); and 'values': per index of `wanted` (int32 bytes), the "
     "values there as (validity bitmap, int32 offsets, data) of an Arrow string array, "
     "quotes kept, NULL past a line's last value and for lines not plain."},
    {"lines", lines, METH_VARARGS,
     "lines(data) -> bytes | None: the int32 offsets of an Arrow string array of the lines "
     "of `data`, each ending after its newline (a last line may have none; no data is one "
     "empty line); None when `data` is not valid UTF-8 or is 2 GiB or more."},
    {"json_cut", json_cut, METH_VARARGS,
     "json_cut(offsets, data, count, keys, times) -> dict | None: when every line of an "
     "Arrow string array is a plain flat JSON object (see cut_json_line), per key of "
     "`keys` (a list of bytes) with a value in some line, (validity bitmap, int32 offsets, "
     "data, micros) of an Arrow string array of its values, as JSON text less a string's "
     "quotes; `times` (a list of flags, one a key) says which keys hold times: for those, "
     "micros (int64 bytes, µs since the epoch) when every value is an ISO time of the "
     "plain shape (YYYY-MM-DDTHH:MM:SS, up to 6 fraction digits, Z), else None. None when "
     "a line is not plain."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_linecut",
                                    "Log lines cut, split and read natively.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__linecut(void) { return PyModule_Create(&module); }
