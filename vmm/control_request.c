/* One request line in, one reply line out (protocol in control.h).
 *
 * Everything in the request is client-controlled: each field is checked and every problem becomes
 * an error reply, so a bad request fails that request and nothing else.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "vmm/control_internal.h"
#include "lib/error.h"

static char *reply_line(struct json_object *reply)
{
	const char *s;
	char *line;
	size_t n;

	if (!reply)
		return NULL;
	/* PLAIN never emits a newline: strings carry theirs escaped, so one reply is one line. */
	s = json_object_to_json_string_ext(reply,
					   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s)
		return NULL;
	n = strlen(s);
	line = malloc(n + 2);
	if (line) {
		memcpy(line, s, n);
		line[n] = '\n';
		line[n + 1] = 0;
	}
	return line;
}

static struct json_object *reply_new(struct json_object *id, int ok)
{
	struct json_object *r = json_object_new_object();

	if (!r)
		return NULL;
	if (json_object_object_add(r, "version", json_object_new_int(CONTROL_PROTOCOL_VERSION)) ||
	    json_object_object_add(r, "id", json_object_get(id)) ||
	    json_object_object_add(r, "ok", json_object_new_boolean(ok))) {
		json_object_put(r);
		return NULL;
	}
	return r;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), 0 if there is none. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return n;
}

char *control_reply_error(struct json_object *id, const char *msg)
{
	struct json_object *r = reply_new(id, 0);
	char *line = NULL, *text = strdup(msg);

	/* Messages quote what the client sent, cut to a length ("%.40s"): a cut through a
	 * multi-byte character would make a reply that strict clients (ours) refuse as JSON. */
	for (size_t i = 0; text && text[i];) {
		size_t n = utf8_len((const unsigned char *)text + i);
		if (n == 0)
			text[i++] = '?';
		else
			i += n;
	}
	if (r && text && json_object_object_add(r, "error", json_object_new_string(text)) == 0)
		line = reply_line(r);
	json_object_put(r);
	free(text);
	return line;
}

static char *reply_ok(struct json_object *id, struct json_object *result)
{
	struct json_object *r = reply_new(id, 1);
	char *line = NULL;

	if (r && json_object_object_add(r, "result", json_object_get(result)) == 0)
		line = reply_line(r);
	json_object_put(r);
	return line;
}

struct json_object *control_json_parse_line(const char *line, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj;
	enum json_tokener_error jerr;

	if (!tok) {
		error_set(-ENOMEM, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!obj) {
		error_set(-EINVAL, "invalid JSON: %s",
			  len == 0			  ? "empty request"
			  : jerr == json_tokener_continue ? "incomplete request"
							  : json_tokener_error_desc(jerr));
	} else {
		for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
			if (line[i] != ' ' && line[i] != '\t') {
				error_set(-EINVAL, "invalid JSON: trailing data after the request");
				json_object_put(obj);
				obj = NULL;
				break;
			}
		}
	}
	json_tokener_free(tok);
	return obj;
}

/* Checks the envelope; on success *verb and *args point into req. */
static int check_request(struct json_object *req, const char **verb, struct json_object **args)
{
	struct json_object *v;

	if (!json_object_is_type(req, json_type_object))
		return error_set(-EINVAL, "request is not a JSON object");
	if (!json_object_object_get_ex(req, "version", &v))
		return error_set(-EINVAL, "missing \"version\" (this server speaks protocol %d)",
				 CONTROL_PROTOCOL_VERSION);
	if (!json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) != CONTROL_PROTOCOL_VERSION)
		return error_set(-EPROTONOSUPPORT,
				 "unsupported protocol version %.32s (this server speaks %d)",
				 json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
				 CONTROL_PROTOCOL_VERSION);
	if (!json_object_object_get_ex(req, "verb", &v) ||
	    !json_object_is_type(v, json_type_string))
		return error_set(-EINVAL, "missing or non-string \"verb\"");
	*verb = json_object_get_string(v);
	*args = NULL;
	if (json_object_object_get_ex(req, "args", args)) {
		int ok = json_object_is_type(*args, json_type_array);
		for (size_t i = 0; ok && i < json_object_array_length(*args); i++)
			ok = json_object_is_type(json_object_array_get_idx(*args, i),
						 json_type_string);
		if (!ok)
			return error_set(-EINVAL, "\"args\" must be an array of strings");
	}
	return 0;
}

static void one_line(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

static char *dispatch(struct control_server *srv, struct json_object *id, const char *verb,
		      struct json_object *args)
{
	char err[CONTROL_ERR_LEN] = "";
	struct json_object *result, *empty = NULL;
	control_verb_fn fn;
	void *opaque;
	char *line;
	int ret;

	if (!control_verb_valid(verb) || control_server_lookup(srv, verb, &fn, &opaque) < 0) {
		snprintf(err, sizeof(err), "unknown verb '%.40s' (try 'help')", verb);
		return control_reply_error(id, err);
	}
	if (!args)
		args = empty = json_object_new_array();
	result = json_object_new_object();
	if (!args || !result) {
		json_object_put(empty);
		json_object_put(result);
		return NULL;
	}
	error_clear();
	ret = fn(opaque, args, result);
	if (ret < 0) {
		if (error_recorded())
			snprintf(err, sizeof(err), "%s", error_msg());
		else
			snprintf(err, sizeof(err), "%s: %s", verb, strerror(-ret));
		one_line(err);
		line = control_reply_error(id, err);
	} else {
		line = reply_ok(id, result);
	}
	json_object_put(result);
	json_object_put(empty);
	return line;
}

char *control_request_handle(struct control_server *srv, const char *line, size_t len)
{
	struct json_object *req = control_json_parse_line(line, len);
	struct json_object *id = NULL, *args;
	const char *verb = NULL;
	char *reply;

	if (!req)
		return control_reply_error(NULL, error_msg());
	/* Echo the id when it is usable, so the client can match even an error reply. */
	if (json_object_is_type(req, json_type_object) &&
	    json_object_object_get_ex(req, "id", &id) && !json_object_is_type(id, json_type_int)) {
		json_object_put(req);
		return control_reply_error(NULL, "\"id\" must be an integer");
	}
	if (check_request(req, &verb, &args) < 0)
		reply = control_reply_error(id, error_msg());
	else
		reply = dispatch(srv, id, verb, args);
	json_object_put(req);
	return reply;
}
