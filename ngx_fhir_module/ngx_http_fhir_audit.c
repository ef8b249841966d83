
/*
 * ngx_fhir: the audit trail.  In the log phase, once the response is over
 * and its outcome known, each read event of a gateway request (one per batch
 * entry) becomes one sealed JSON line (core/fhir_audit.c), written with one
 * write() on an O_APPEND descriptor, or sent to syslog (RFC 5424).  Each
 * worker seals its own chain.  There is no user-space buffering that a
 * crash could lose.  With fhir_audit_fail_closed, a worker whose
 * last audit write failed refuses PHI requests with a 503 until a write
 * succeeds again (the refusals themselves are audited, which is how it
 * recovers).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/stat.h>
#include <openssl/evp.h>

#include "ngx_http_fhir_module.h"
#include "fhir_audit.h"


static fhir_audit_chain_t   ngx_http_fhir_chain;
static char                 ngx_http_fhir_chain_id[128];
static size_t               ngx_http_fhir_chain_id_len;
static ngx_uint_t           ngx_http_fhir_audit_failed;
static ngx_socket_t         ngx_http_fhir_syslog_fd = (ngx_socket_t) -1;
static ngx_fd_t             ngx_http_fhir_audit_checked_fd = NGX_INVALID_FILE;
ngx_int_t                   ngx_http_fhir_request_id_index = NGX_ERROR;
static fhir_buf_t           ngx_http_fhir_line;
/* an AuditEvent line's record text, reused record by record */
static fhir_buf_t           ngx_http_fhir_rec;


/* the longest query text a record carries (docs/audit.md) */
#define NGX_HTTP_FHIR_AUDIT_QUERY_MAX  4096


static ngx_int_t ngx_http_fhir_audit_texts(ngx_pool_t *pool,
    fhir_audit_record_t *f);
static ngx_int_t ngx_http_fhir_audit_emit(ngx_http_fhir_audit_conf_t *acf,
    ngx_log_t *log, const fhir_audit_record_t *f);
static ngx_int_t ngx_http_fhir_audit_write(ngx_http_fhir_audit_conf_t *acf,
    ngx_log_t *log, u_char *data, size_t len);
static ngx_int_t ngx_http_fhir_auditevent(fhir_buf_t *out,
    const fhir_audit_record_t *f, const char *ts, size_t ts_len);
static int ngx_http_fhir_audit_start(fhir_buf_t *b);
static void ngx_http_fhir_audit_create(u_char *name, ngx_uint_t mode,
    ngx_log_t *log);
static void ngx_http_fhir_audit_reopen(ngx_open_file_t *file, ngx_log_t *log);

/* the audit file's mode, and the flush handler of another user of the same
 * file (an access_log with buffer=), which the reopen hook calls in turn */
static ngx_uint_t           ngx_http_fhir_audit_mode = 0600;
static void               (*ngx_http_fhir_audit_next_flush)(ngx_open_file_t *file,
    ngx_log_t *log);


char *
ngx_http_fhir_audit_log(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_fhir_main_conf_t *fmcf = conf;

    u_char                      *p, *last, *next;
    ngx_str_t                   *value, s;
    ngx_url_t                    u;
    ngx_uint_t                   i;
    ngx_http_fhir_audit_conf_t  *acf = &fmcf->audit;

    static const char  *facilities[] = {
        "kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news",
        "uucp", "clock", "authpriv", "ftp", "ntp", "audit", "alert", "cron",
        "local0", "local1", "local2", "local3", "local4", "local5", "local6",
        "local7", NULL
    };

    if (acf->set) {
        return "is duplicate";
    }

    acf->set = 1;
    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts > 2) {
            return "takes no other parameter with \"off\"";
        }
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[1].data, "syslog:", 7) == 0) {

        acf->facility = 13 /* log audit */;
        ngx_str_set(&acf->tag, "ngx_fhir");

        p = value[1].data + 7;
        last = value[1].data + value[1].len;

        for ( /* void */ ; p < last; p = next + 1) {
            next = ngx_strlchr(p, last, ',');
            if (next == NULL) {
                next = last;
            }
            s.data = p;
            s.len = next - p;

            if (s.len > 7 && ngx_strncmp(s.data, "server=", 7) == 0) {
                ngx_memzero(&u, sizeof(ngx_url_t));
                u.url.data = s.data + 7;
                u.url.len = s.len - 7;
                u.default_port = 514;

                if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "fhir_audit_log: invalid syslog "
                                       "server \"%V\": %s", &u.url,
                                       u.err ? u.err : "unknown error");
                    return NGX_CONF_ERROR;
                }

                acf->syslog = &u.addrs[0];

            } else if (s.len > 9 && ngx_strncmp(s.data, "facility=", 9) == 0)
            {
                for (i = 0; facilities[i]; i++) {
                    if (ngx_strlen(facilities[i]) == s.len - 9
                        && ngx_strncmp(facilities[i], s.data + 9, s.len - 9)
                           == 0)
                    {
                        acf->facility = i;
                        break;
                    }
                }
                if (facilities[i] == NULL) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "fhir_audit_log: unknown syslog "
                                       "facility \"%V\"", &s);
                    return NGX_CONF_ERROR;
                }

            } else if (s.len > 4 && ngx_strncmp(s.data, "tag=", 4) == 0) {
                acf->tag.data = s.data + 4;
                acf->tag.len = s.len - 4;

                /* as nginx's own syslog tags: the record's APP-NAME */
                for (i = 0; i < acf->tag.len; i++) {
                    if (!isalnum(acf->tag.data[i]) && acf->tag.data[i] != '_') {
                        break;
                    }
                }
                if (i < acf->tag.len || acf->tag.len > 32) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "fhir_audit_log: syslog tag \"%V\" "
                                       "must be 1 to 32 letters, digits or "
                                       "\"_\"", &acf->tag);
                    return NGX_CONF_ERROR;
                }

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "fhir_audit_log: unknown syslog "
                                   "parameter \"%V\" (known: server=, "
                                   "facility=, tag=)", &s);
                return NGX_CONF_ERROR;
            }
        }

        if (acf->syslog == NULL) {
            return "needs \"syslog:server=ADDRESS[:PORT]\"";
        }

        return NGX_CONF_OK;
    }

    acf->mode = 0600;

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strcmp(value[i].data, "mode=0600") == 0) {
            acf->mode = 0600;

        } else if (ngx_strcmp(value[i].data, "mode=0640") == 0) {
            acf->mode = 0640;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "fhir_audit_log: invalid parameter \"%V\" "
                               "(audit files are mode=0600 or mode=0640; "
                               "records are never buffered)", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    /* nginx opens it O_APPEND, and reopens it on USR1 (log rotation) */
    acf->file = ngx_conf_open_file(cf->cycle, &value[1]);
    if (acf->file == NULL) {
        return NGX_CONF_ERROR;
    }

    /*
     * nginx creates a missing log file 0644, at start and at each reopen;
     * whoever opened the audit file in the moment before it is made 0600
     * could read every record after.  So a missing file is created here
     * with the audit mode first (nginx then opens what exists), and again
     * just before each reopen, by the hook nginx calls then (with the
     * mode of the configuration in force: set when a cycle starts, in
     * ngx_http_fhir_audit_init_module(), so that a reload that fails leaves
     * it as it was).
     */
    if (ngx_process != NGX_PROCESS_SIGNALLER) {
        ngx_http_fhir_audit_create(acf->file->name.data, acf->mode, cf->log);
    }

    if (acf->file->flush != ngx_http_fhir_audit_reopen) {
        ngx_http_fhir_audit_next_flush = acf->file->flush;
        acf->file->flush = ngx_http_fhir_audit_reopen;
    }

    return NGX_CONF_OK;
}


/* a missing audit file, created with the audit mode; one that exists (or
 * anything else by that name) is left alone */
static void
ngx_http_fhir_audit_create(u_char *name, ngx_uint_t mode, ngx_log_t *log)
{
    ngx_fd_t  fd;

    fd = open((const char *) name, O_WRONLY | O_APPEND | O_CREAT | O_EXCL,
              (mode_t) mode);

    if (fd == NGX_INVALID_FILE) {
        /* it exists; or a worker may not create files there, and the
         * master, which reopens first, has made it */
        ngx_log_debug1(NGX_LOG_DEBUG_CORE, log, ngx_errno,
                       "fhir: audit log \"%s\" not created", name);
        return;
    }

    (void) ngx_close_file(fd);
}


static void
ngx_http_fhir_audit_reopen(ngx_open_file_t *file, ngx_log_t *log)
{
    ngx_http_fhir_audit_create(file->name.data, ngx_http_fhir_audit_mode, log);

    if (ngx_http_fhir_audit_next_flush) {
        ngx_http_fhir_audit_next_flush(file, log);
    }
}


char *
ngx_http_fhir_audit_check(ngx_conf_t *cf, ngx_http_fhir_audit_conf_t *acf)
{
    if ((acf->file || acf->syslog) && acf->key.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_audit_log\" needs \"fhir_audit_key_file\": "
                           "the key of the records' HMAC chain");
        return NGX_CONF_ERROR;
    }

    if (acf->fail_closed == 1 && !acf->file && !acf->syslog) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_audit_fail_closed on\" needs an audit "
                           "sink: \"fhir_audit_log\"");
        return NGX_CONF_ERROR;
    }

    if (acf->fail_closed == NGX_CONF_UNSET) {
        acf->fail_closed = 0;
    }

    if (acf->format == NGX_CONF_UNSET_UINT) {
        acf->format = 0;
    }

    ngx_http_fhir_request_id_index = ngx_http_get_variable_index(cf,
                                     &(ngx_str_t) ngx_string("request_id"));

    return NGX_CONF_OK;
}


ngx_uint_t
ngx_http_fhir_audit_refuses(ngx_http_request_t *r)
{
    ngx_http_fhir_main_conf_t  *fmcf;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_fhir_module);

    return fmcf->audit.fail_closed && ngx_http_fhir_audit_failed;
}


/* workers */

ngx_int_t
ngx_http_fhir_audit_init_module(ngx_cycle_t *cycle)
{
    ngx_file_info_t              fi;
    ngx_core_conf_t             *ccf;
    ngx_http_fhir_main_conf_t   *fmcf;
    ngx_http_fhir_audit_conf_t  *acf;

    fmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_fhir_module);
    if (fmcf == NULL) {
        return NGX_OK;
    }

    acf = &fmcf->audit;

    if (acf->file == NULL || acf->file->fd == NGX_INVALID_FILE) {
        return NGX_OK;
    }

    ngx_http_fhir_audit_mode = acf->mode;

    /* the audit file is not for everyone to read; what is not a regular
     * file (a FIFO to a collector, a container's /dev/stdout, /dev/null)
     * is the system's, and keeps its mode and owner */

    if (ngx_fd_info(acf->file->fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                      "fhir: fstat() of audit log \"%V\" failed",
                      &acf->file->name);
        return NGX_OK;
    }

    if (!ngx_is_file(&fi)) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "fhir: audit log \"%V\" is not a regular file: "
                      "its mode and owner are left as they are",
                      &acf->file->name);
        return NGX_OK;
    }

    if (fchmod(acf->file->fd, acf->mode) == -1) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                      "fhir: fchmod(%04o) of audit log \"%V\" failed",
                      acf->mode, &acf->file->name);
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (geteuid() == 0 && ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        if (fchown(acf->file->fd, ccf->user, (gid_t) -1) == -1) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                          "fhir: fchown() of audit log \"%V\" failed",
                          &acf->file->name);
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_fhir_audit_init_process(ngx_cycle_t *cycle)
{
    ngx_http_fhir_main_conf_t   *fmcf;
    ngx_http_fhir_audit_conf_t  *acf;

    fmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_fhir_module);
    if (fmcf == NULL) {
        return NGX_OK;
    }

    acf = &fmcf->audit;

    if (!acf->file && !acf->syslog) {
        return NGX_OK;
    }

    /* this worker's chain */

    fhir_audit_chain_init(&ngx_http_fhir_chain, acf->key.data, acf->key.len);
    ngx_snprintf((u_char *) ngx_http_fhir_chain_id,
                 sizeof(ngx_http_fhir_chain_id) - 1, "%V/%P/%M%Z",
                 &cycle->hostname, ngx_pid, ngx_current_msec);
    ngx_http_fhir_chain_id_len = ngx_strlen(ngx_http_fhir_chain_id);

    if (acf->syslog) {
        ngx_http_fhir_syslog_fd = ngx_socket(acf->syslog->sockaddr->sa_family,
                                             SOCK_DGRAM, 0);
        if (ngx_http_fhir_syslog_fd == (ngx_socket_t) -1) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_socket_errno,
                          "fhir: audit syslog socket failed");
            ngx_http_fhir_audit_failed = 1;
            return NGX_OK;
        }
        (void) ngx_nonblocking(ngx_http_fhir_syslog_fd);
    }

    /* a first record opens the chain, and proves that the sink works */

    (void) ngx_http_fhir_audit_emit(acf, cycle->log, NULL);

    return NGX_OK;
}


void
ngx_http_fhir_audit_exit_process(ngx_cycle_t *cycle)
{
    fhir_buf_free(&ngx_http_fhir_line);
    fhir_buf_free(&ngx_http_fhir_rec);
    fhir_audit_chain_free(&ngx_http_fhir_chain);

    if (ngx_http_fhir_syslog_fd != (ngx_socket_t) -1) {
        ngx_close_socket(ngx_http_fhir_syslog_fd);
        ngx_http_fhir_syslog_fd = (ngx_socket_t) -1;
    }
}


/*
 * The record as a FHIR R4 AuditEvent, after the IHE Basic Audit Log
 * Patterns for reads and queries: type rest, subtype read / search-type,
 * action R or E, the requestor and the gateway as agents, the patient and
 * the resource or the query (base64) as entities.  The seal and the
 * gateway's own fields travel in one extension, the seal last.
 */
static ngx_int_t
ngx_http_fhir_auditevent(fhir_buf_t *out, const fhir_audit_record_t *f,
    const char *ts, size_t ts_len)
{
    u_char                   *b64;
    size_t                    n, k;
    const char               *code, *outcome;
    fhir_buf_t               *rec = &ngx_http_fhir_rec;
    const fhir_audit_text_t  *oc, *patient, *type, *id, *query, *client;

    /* the record's own text, which the seal's extension carries; the
     * worker's first record (f == NULL) has its event and pid only */

    rec->len = 0;

    if (f ? fhir_audit_build(rec, f) != 0
          : (fhir_buf_puts(rec, "{") != 0
             || ngx_http_fhir_audit_start(rec) != 0))
    {
        return NGX_ERROR;
    }

    /* the members an AuditEvent shows, when known */
#define KNOWN(t)  (f && (t).data ? &(t) : NULL)

    oc = KNOWN(f->outcome);
    patient = KNOWN(f->patient);
    type = KNOWN(f->resource_type);
    id = KNOWN(f->resource_id);
    query = KNOWN(f->query);
    client = KNOWN(f->client_ip);

#undef KNOWN

    code = (f && f->event.len > 7
            && ngx_strncmp(f->event.data + f->event.len - 7, ".search", 7)
               == 0)
           ? "search-type" : "read";

    outcome = "0";
    if (oc && oc->len == 6 && ngx_strncmp(oc->data, "denied", 6) == 0) {
        outcome = "4";
    } else if (oc && !(oc->len == 7
                       && ngx_strncmp(oc->data, "success", 7) == 0))
    {
        outcome = "8";
    }

#define PUT(s)   (fhir_buf_puts(out, s) == 0)
#define TXT(t)   (fhir_json_escape(out, (t)->data, (t)->len) == 0)

    if (!(PUT("{\"resourceType\":\"AuditEvent\",\"type\":{\"system\":"
              "\"http://terminology.hl7.org/CodeSystem/audit-event-type\","
              "\"code\":\"rest\",\"display\":\"RESTful Operation\"},"
              "\"subtype\":[{\"system\":\"http://hl7.org/fhir/"
              "restful-interaction\",\"code\":\"")
          && PUT(code)
          && PUT("\"}],\"action\":\"")
          && PUT(code[0] == 'r' ? "R" : "E")
          && PUT("\",\"recorded\":\"")
          && fhir_buf_append(out, ts, ts_len) == 0
          && PUT("\",\"outcome\":\"") && PUT(outcome) && PUT("\"")
          && (oc == NULL || (PUT(",\"outcomeDesc\":\"") && TXT(oc) && PUT("\"")))
          && PUT(",\"agent\":[{\"type\":{\"coding\":[{\"system\":\"http://"
                 "terminology.hl7.org/CodeSystem/v3-ParticipationType\","
                 "\"code\":\"IRCP\",\"display\":\"information recipient\"}]},"
                 "\"who\":{\"display\":\"caller\"},\"requestor\":true")
          && (client == NULL
              || (PUT(",\"network\":{\"address\":\"") && TXT(client)
                  && PUT("\",\"type\":\"2\"}")))
          && PUT("},{\"type\":{\"coding\":[{\"system\":\"http://dicom.nema.org/"
                 "resources/ontology/DCM\",\"code\":\"110153\",\"display\":"
                 "\"Source Role ID\"}]},\"who\":{\"display\":\"ngx_fhir\"},"
                 "\"requestor\":false}],\"source\":{\"site\":\"")
          && fhir_json_escape(out, (char *) ngx_cycle->hostname.data,
                              ngx_cycle->hostname.len) == 0
          && PUT("\",\"observer\":{\"display\":\"ngx_fhir\"},\"type\":[{"
                 "\"system\":\"http://terminology.hl7.org/CodeSystem/"
                 "security-source-type\",\"code\":\"4\",\"display\":"
                 "\"Application Server\"}]}")))
    {
        goto failed;
    }

    if (patient || (type && id) || query) {
        if (!PUT(",\"entity\":[")) {
            goto failed;
        }
        k = 0;
        if (patient) {
            if (!(PUT("{\"what\":{\"reference\":\"Patient/") && TXT(patient)
                  && PUT("\"},\"type\":{\"system\":\"http://terminology.hl7"
                         ".org/CodeSystem/audit-entity-type\",\"code\":\"1\"},"
                         "\"role\":{\"system\":\"http://terminology.hl7.org/"
                         "CodeSystem/object-role\",\"code\":\"1\"}}")))
            {
                goto failed;
            }
            k++;
        }
        if (type && id
            && !(patient && type->len == 7
                 && ngx_strncmp(type->data, "Patient", 7) == 0))
        {
            if (!((k == 0 || PUT(",")) && PUT("{\"what\":{\"reference\":\"")
                  && TXT(type) && PUT("/") && TXT(id)
                  && PUT("\"},\"type\":{\"system\":\"http://terminology.hl7"
                         ".org/CodeSystem/audit-entity-type\",\"code\":\"2\"}}")))
            {
                goto failed;
            }
            k++;
        }
        if (query) {
            b64 = ngx_alloc(query->len * 2 + 8, ngx_cycle->log);
            if (b64 == NULL) {
                goto failed;
            }
            n = EVP_EncodeBlock(b64, (u_char *) query->data, query->len);
            if (!((k == 0 || PUT(",")) && PUT("{\"type\":{\"system\":\"http://"
                      "terminology.hl7.org/CodeSystem/audit-entity-type\","
                      "\"code\":\"2\"},\"role\":{\"system\":\"http://"
                      "terminology.hl7.org/CodeSystem/object-role\",\"code\":"
                      "\"24\"},\"query\":\"")
                  && fhir_buf_append(out, b64, n) == 0 && PUT("\"}")))
            {
                ngx_free(b64);
                goto failed;
            }
            ngx_free(b64);
        }
        if (!PUT("]")) {
            goto failed;
        }
    }

    /* the gateway's own fields, then the seal */
    if (!PUT(",\"extension\":[{\"url\":\"urn:ngx-fhir:audit-seal\","
             "\"extension\":[{\"url\":\"chain\",\"valueString\":\"")
        || fhir_json_escape(out, ngx_http_fhir_chain_id,
                            ngx_http_fhir_chain_id_len) != 0
        || !PUT("\"},{\"url\":\"record\",\"valueString\":\"")
        || fhir_json_escape(out, rec->data, rec->len) != 0
        || !PUT("}\"}")
        || fhir_audit_seal_ext(&ngx_http_fhir_chain, out,
               ",{\"url\":\"seq\",\"valueInteger\":",
               "},{\"url\":\"prev\",\"valueString\":\"",
               "\"},{\"url\":\"hmac\",\"valueString\":\"",
               "\"}]}]}\n") != 0)
    {
        goto failed;
    }

#undef PUT
#undef TXT

    return NGX_OK;

failed:

    return NGX_ERROR;
}


/* the members of a worker's first record, after what b holds already */

static int
ngx_http_fhir_audit_start(fhir_buf_t *b)
{
    if (fhir_audit_str(b, "event", "audit.start", 11) != 0
        || fhir_audit_num(b, "pid", ngx_pid) != 0)
    {
        return -1;
    }

    return 0;
}


/* a JSON line, sealed; the worker's first record (f == NULL) has its event
 * and pid */

static ngx_int_t
ngx_http_fhir_audit_json(fhir_buf_t *line, const fhir_audit_record_t *f,
    const char *ts, size_t ts_len)
{
    if (f) {
        return fhir_audit_line(&ngx_http_fhir_chain, line, ts, ts_len,
                               ngx_http_fhir_chain_id,
                               ngx_http_fhir_chain_id_len, f)
               == 0 ? NGX_OK : NGX_ERROR;
    }

    if (fhir_audit_line_head(line, ts, ts_len, ngx_http_fhir_chain_id,
                             ngx_http_fhir_chain_id_len) != 0
        || ngx_http_fhir_audit_start(line) != 0
        || fhir_audit_seal(&ngx_http_fhir_chain, line) != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* one record: its timestamp and chain, sealed, written at once */

static ngx_int_t
ngx_http_fhir_audit_emit(ngx_http_fhir_audit_conf_t *acf, ngx_log_t *log,
    const fhir_audit_record_t *f)
{
    u_char           *p, head[256];
    ssize_t           n;
    ngx_tm_t          tm;
    ngx_time_t       *tp;
    ngx_file_info_t   fi;
    fhir_buf_t       *line = &ngx_http_fhir_line;

    /* the timestamp: its date and time formatted once a second, its
     * milliseconds written at each record */
    static u_char     ts[64];
    static size_t     ts_len;
    static time_t     ts_sec = -1;

    tp = ngx_timeofday();

    if (tp->sec != ts_sec) {
        ngx_gmtime(tp->sec, &tm);
        p = ngx_sprintf(ts, "%4d-%02d-%02dT%02d:%02d:%02d.000Z%Z",
                        tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                        tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
        /* the NUL is for the syslog header's %s, not part of the text */
        ts_len = p - 1 - ts;
        ts_sec = tp->sec;
    }

    ts[ts_len - 4] = (u_char) ('0' + tp->msec / 100);
    ts[ts_len - 3] = (u_char) ('0' + tp->msec / 10 % 10);
    ts[ts_len - 2] = (u_char) ('0' + tp->msec % 10);

    line->len = 0;

    if ((acf->format == 1
         ? ngx_http_fhir_auditevent(line, f, (char *) ts, ts_len)
         : ngx_http_fhir_audit_json(line, f, (char *) ts, ts_len))
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, log, 0, "fhir: audit record not built");
        ngx_http_fhir_audit_failed = 1;
        return NGX_ERROR;
    }

    if (acf->file) {

        /* a rotated (reopened) file gets the audit mode too */
        if (acf->file->fd != ngx_http_fhir_audit_checked_fd) {
            ngx_http_fhir_audit_checked_fd = acf->file->fd;
            if (ngx_fd_info(acf->file->fd, &fi) != NGX_FILE_ERROR
                && ngx_is_file(&fi)
                && (fi.st_mode & 0777) != acf->mode)
            {
                (void) fchmod(acf->file->fd, acf->mode);
            }
        }

        /* one write() per record, nothing held in the worker */
        return ngx_http_fhir_audit_write(acf, log, (u_char *) line->data,
                                         line->len);

    } else {
        /* RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG */
        p = ngx_snprintf(head, sizeof(head), "<%ui>1 %s %V %V %P fhir - ",
                         acf->facility * 8 + 6, ts, &ngx_cycle->hostname,
                         &acf->tag, ngx_pid);

        /* the line without its newline, after the header */
        if (fhir_buf_reserve(line, p - head) != 0) {
            ngx_http_fhir_audit_failed = 1;
            return NGX_ERROR;
        }
        ngx_memmove(line->data + (p - head), line->data, line->len - 1);
        ngx_memcpy(line->data, head, p - head);
        line->len += (p - head) - 1;

        n = sendto(ngx_http_fhir_syslog_fd, line->data, line->len, 0,
                   acf->syslog->sockaddr, acf->syslog->socklen);

        if (n != (ssize_t) line->len) {
            ngx_log_error(NGX_LOG_ALERT, log, ngx_socket_errno,
                          "fhir: audit record not sent to syslog %V",
                          &acf->syslog->name);
            ngx_http_fhir_audit_failed = 1;
            return NGX_ERROR;
        }
    }

    ngx_http_fhir_audit_failed = 0;
    return NGX_OK;
}


static ngx_int_t
ngx_http_fhir_audit_write(ngx_http_fhir_audit_conf_t *acf, ngx_log_t *log,
    u_char *data, size_t len)
{
    ssize_t  n;

    n = write(acf->file->fd, data, len);

    if (n != (ssize_t) len) {
        ngx_log_error(NGX_LOG_ALERT, log, n == -1 ? ngx_errno : 0,
                      "fhir: audit record not written to \"%V\"%s",
                      &acf->file->name,
                      acf->fail_closed ? "; PHI requests are refused "
                                         "until it can be"
                                       : "");
        ngx_http_fhir_audit_failed = 1;
        return NGX_ERROR;
    }

    ngx_http_fhir_audit_failed = 0;
    return NGX_OK;
}


/* what the response said about each batch entry, and the read patient */

void
ngx_http_fhir_audit_observe(void *data, int what, fj_node_t *node)
{
    ngx_http_request_t   *r = data;

    char                         text[512];
    size_t                       n;
    fj_node_t                   *resp, *status, *res, *entries, *ref;
    ngx_http_fhir_ctx_t         *ctx;
    ngx_http_fhir_audit_entry_t  *e;

    ctx = ngx_http_get_module_ctx(r, ngx_http_fhir_module);

    if (what == FHIR_OBSERVE_RESOURCE) {
        res = node;
        e = &ctx->read;

    } else if (what == FHIR_OBSERVE_ENTRY && ctx->batch) {
        if (ctx->batch_results == NULL) {
            ctx->batch_results = ngx_array_create(r->pool, 8,
                                     sizeof(ngx_http_fhir_audit_entry_t));
            if (ctx->batch_results == NULL) {
                return;
            }
        }
        e = ngx_array_push(ctx->batch_results);
        if (e == NULL) {
            return;
        }
        ngx_memzero(e, sizeof(ngx_http_fhir_audit_entry_t));

        resp = fj_get(node, "response");
        status = fj_get_str(resp, "status");
        if (status) {
            e->status = ngx_atoi((u_char *) status->raw,
                                 ngx_min(status->raw_len, 3));
        }
        res = fj_get(node, "resource");

    } else {
        return;
    }

    if (res == NULL) {
        return;
    }

    entries = fj_get(res, "entry");
    e->entries = entries ? (ngx_int_t) fj_count(entries) : 1;

    /* the ids as the partner meant them: JSON escapes decoded */
    if (fj_str_is(fj_get(res, "resourceType"), "Patient")) {
        ref = fj_get_str(res, "id");
        if (ref) {
            (void) fhir_json_unescape(e->patient, sizeof(e->patient),
                                      ref->raw, ref->raw_len);
        }
        return;
    }

    ref = fj_get_str(fj_get(res, "subject"), "reference");
    if (ref == NULL) {
        ref = fj_get_str(fj_get(res, "patient"), "reference");
    }
    if (ref == NULL) {
        ref = fj_get_str(fj_get(res, "beneficiary"), "reference");
    }
    if (ref) {
        n = fhir_json_unescape(text, sizeof(text), ref->raw, ref->raw_len);
        (void) fhir_audit_patient_of_reference(text, n, e->patient,
                                               sizeof(e->patient));
    }
}


/* the log phase */

typedef struct {
    ngx_str_t    request_id;
    ngx_str_t    client;
    ngx_str_t    method;
    ngx_uint_t   status;
    ngx_int_t    upstream_status;
    off_t        bytes;
    const char  *outcome;
} ngx_http_fhir_audit_common_t;


static const char *
ngx_http_fhir_outcome(ngx_uint_t status, ngx_uint_t gateway_refused)
{
    if (gateway_refused || status == NGX_HTTP_UNAUTHORIZED
        || status == NGX_HTTP_FORBIDDEN)
    {
        return "denied";
    }

    /* a 304: the caller's copy is current, and it reads that */
    if ((status >= 200 && status < 300) || status == NGX_HTTP_NOT_MODIFIED) {
        return "success";
    }

    return "upstream_error";
}


static ngx_inline void
ngx_http_fhir_audit_text(fhir_audit_text_t *t, const char *s, size_t len)
{
    t->data = s;               /* NULL: the member is null */
    t->len = len;
}


/* a C string from the claims or the classification; empty: null */
static ngx_inline void
ngx_http_fhir_audit_opt(fhir_audit_text_t *t, const char *s)
{
    t->data = s[0] ? s : NULL;
    t->len = ngx_strlen(s);
}


/*
 * A record's texts made fit for a JSON line: bytes that are not UTF-8 (a
 * raw byte in a path, query or form) written as %XX, and a query longer
 * than NGX_HTTP_FHIR_AUDIT_QUERY_MAX bytes (a huge search form) cut there
 * and ended with "...(N bytes)", so that a record is always valid JSON and
 * always fits a syslog datagram: a read is never left without its record.
 * The texts the module makes itself (request and batch ids, the client's
 * address) are ASCII and are not looked at.
 */
static ngx_int_t
ngx_http_fhir_audit_texts(ngx_pool_t *pool, fhir_audit_record_t *f)
{
    u_char              *p;
    size_t               len;
    ngx_uint_t           i;
    fhir_audit_text_t   *t;
    fhir_audit_text_t   *texts[] = {
        &f->subject, &f->tenant, &f->client_id, &f->resource_type,
        &f->resource_id, &f->patient, &f->query
    };

    if (f->query.data && f->query.len > NGX_HTTP_FHIR_AUDIT_QUERY_MAX) {
        p = ngx_pnalloc(pool, NGX_HTTP_FHIR_AUDIT_QUERY_MAX * 3
                              + sizeof("...( bytes)") + NGX_SIZE_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }
        len = fhir_audit_utf8_fix((char *) p, f->query.data,
                                  NGX_HTTP_FHIR_AUDIT_QUERY_MAX);
        f->query.len = ngx_sprintf(p + len, "...(%uz bytes)", f->query.len)
                       - p;
        f->query.data = (char *) p;
    }

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        t = texts[i];

        if (t->data == NULL || fhir_audit_utf8_ok(t->data, t->len)) {
            continue;
        }

        p = ngx_pnalloc(pool, t->len * 3);
        if (p == NULL) {
            return NGX_ERROR;
        }
        t->len = fhir_audit_utf8_fix((char *) p, t->data, t->len);
        t->data = (char *) p;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_fhir_audit_record(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx,
    ngx_http_fhir_audit_conf_t *acf, ngx_http_fhir_audit_common_t *cm,
    fhir_audit_what_t *w, const char *query, size_t query_len,
    ngx_str_t *batch_id, ngx_http_fhir_audit_entry_t *e, const char *outcome,
    ngx_uint_t status)
{
    const char           *event;
    fhir_audit_record_t   f;

    if (e && e->patient[0] && w->patient[0] == '\0') {
        ngx_cpystrn((u_char *) w->patient, (u_char *) e->patient,
                    sizeof(w->patient));
    }

    event = w->event ? w->event : "resource.read";

    ngx_http_fhir_audit_text(&f.event, event, ngx_strlen(event));
    ngx_http_fhir_audit_text(&f.outcome, outcome, ngx_strlen(outcome));
    ngx_http_fhir_audit_text(&f.request_id, (char *) cm->request_id.data,
                             cm->request_id.len);
    ngx_http_fhir_audit_text(&f.batch_id,
                             batch_id ? (char *) batch_id->data : NULL,
                             batch_id ? batch_id->len : 0);
    ngx_http_fhir_audit_text(&f.client_ip, (char *) cm->client.data,
                             cm->client.len);
    ngx_http_fhir_audit_opt(&f.subject, ctx->claims.sub);
    ngx_http_fhir_audit_opt(&f.tenant, ctx->claims.tenant);
    ngx_http_fhir_audit_opt(&f.client_id, ctx->claims.client_id);
    ngx_http_fhir_audit_text(&f.partner,
                             ctx->partner ? (char *) ctx->partner->name.data
                                          : NULL,
                             ctx->partner ? ctx->partner->name.len : 0);
    ngx_http_fhir_audit_text(&f.method, (char *) cm->method.data,
                             cm->method.len);
    ngx_http_fhir_audit_opt(&f.resource_type, w->resource_type);
    ngx_http_fhir_audit_opt(&f.resource_id, w->resource_id);
    ngx_http_fhir_audit_opt(&f.patient, w->patient);
    ngx_http_fhir_audit_text(&f.query, query, query ? query_len : 0);

    if (ngx_http_fhir_audit_texts(r->pool, &f) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "fhir: audit record not built");
        ngx_http_fhir_audit_failed = 1;
        return NGX_ERROR;
    }

    f.status = status;
    f.upstream_status = cm->upstream_status;
    f.entries = e ? e->entries : 0;
    f.bytes = batch_id ? 0 : cm->bytes;

    return ngx_http_fhir_audit_emit(acf, r->connection->log, &f);
}


static ngx_int_t
ngx_http_fhir_audit_handler(ngx_http_request_t *r)
{
    u_char                        *q, *src, *dst, path[512];
    size_t                         n, skip;
    ngx_str_t                      query, *url;
    ngx_uint_t                     i, status, refused;
    const char                    *outcome;
    fhir_audit_what_t              w;
    ngx_http_fhir_ctx_t           *ctx;
    ngx_http_variable_value_t     *v;
    ngx_http_fhir_main_conf_t     *fmcf;
    ngx_http_fhir_audit_entry_t    none, *results;
    ngx_http_fhir_audit_common_t   cm;
    ngx_http_fhir_batch_request_t *breq;

    ctx = ngx_http_get_module_ctx(r, ngx_http_fhir_module);
    if (ctx == NULL || r != r->main || ctx->not_audited) {
        return NGX_OK;
    }

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_fhir_module);
    if (!fmcf->audit.file && !fmcf->audit.syslog) {
        return NGX_OK;
    }

    ngx_memzero(&cm, sizeof(cm));

    if (ngx_http_fhir_request_id_index != NGX_ERROR) {
        v = ngx_http_get_indexed_variable(r, ngx_http_fhir_request_id_index);
        if (v && !v->not_found) {
            cm.request_id.data = v->data;
            cm.request_id.len = v->len;
        }
    }

    cm.client = r->connection->addr_text;
    cm.method = r->method_name;
    cm.status = r->headers_out.status;
    cm.upstream_status = (r->upstream && r->upstream->state)
                         ? (ngx_int_t) r->upstream->state->status : 0;
    cm.bytes = r->connection->sent - r->header_size;
    if (cm.bytes < 0) {
        cm.bytes = 0;
    }

    refused = ctx->error_status != 0;

    if (ctx->mode == NGX_HTTP_FHIR_CONVERT && ctx->header_sent
        && !ctx->last_sent)
    {
        outcome = "aborted";
    } else if (ctx->aborted) {
        outcome = "aborted";
    } else {
        outcome = ngx_http_fhir_outcome(cm.status, refused);
    }

    ngx_memzero(&none, sizeof(none));

    /* a batch: one record per entry, sharing the request id as batch id */

    if (ctx->batch && ctx->batch_requests && !refused) {
        breq = ctx->batch_requests->elts;
        results = ctx->batch_results ? ctx->batch_results->elts : NULL;

        for (i = 0; i < ctx->batch_requests->nelts; i++) {
            url = &breq[i].url;
            q = ngx_strlchr(url->data, url->data + url->len, '?');
            n = q ? (size_t) (q - url->data) : url->len;
            skip = (url->len && url->data[0] == '/') ? 1 : 0;

            /* the path as the partner reads it (Observ%61tion is a
             * search of Observations), as a direct request's is */
            src = url->data + skip;
            dst = path;
            ngx_unescape_uri(&dst, &src, ngx_min(n - skip, sizeof(path)),
                             NGX_UNESCAPE_URI);

            fhir_audit_classify(breq[i].post, (char *) path, dst - path,
                                q ? (char *) q + 1 : "",
                                q ? url->len - n - 1 : 0, &w);

            status = (results && i < ctx->batch_results->nelts)
                     ? results[i].status : cm.status;

            (void) ngx_http_fhir_audit_record(r, ctx, &fmcf->audit, &cm, &w,
                       q ? (char *) q + 1 : NULL,
                       q ? url->len - n - 1 : 0, &cm.request_id,
                       (results && i < ctx->batch_results->nelts)
                       ? &results[i] : &none,
                       ngx_strcmp(outcome, "success") == 0
                       ? ngx_http_fhir_outcome(status, 0) : outcome,
                       status);
        }

        return NGX_OK;
    }

    /* one read event */

    if (r->method == NGX_HTTP_POST && ctx->body.len) {
        query = ctx->body;            /* a Patient/_search form */
    } else {
        query = r->args;
    }

    fhir_audit_classify(r->method == NGX_HTTP_POST,
                        (char *) ctx->path.data, ctx->path.len,
                        (char *) query.data, query.len, &w);

    if (ctx->batch) {
        w.event = "resource.read";
    }

    if (ctx->stream && ngx_strcmp(outcome, "success") == 0) {
        if (fhir_stream_is_bundle(ctx->stream)) {
            ctx->read.entries = fhir_stream_entries(ctx->stream);
        }
    } else if (ngx_strcmp(outcome, "success") != 0) {
        ctx->read.entries = 0;
    }

    (void) ngx_http_fhir_audit_record(r, ctx, &fmcf->audit, &cm, &w,
                                      w.search && query.len
                                      ? (char *) query.data : NULL,
                                      query.len, NULL, &ctx->read, outcome,
                                      cm.status);

    return NGX_OK;
}


ngx_int_t
ngx_http_fhir_audit_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_fhir_audit_handler;

    return NGX_OK;
}
