/*
 * The of-watchdog image's upstream (fprocess in mode=http): one long-lived HTTP/1.1 server that
 * keeps connections alive, so a benchmark of the image measures the proxies in front of it, not
 * a process per call. build.sh compiles it statically (gcc -static -O2 -pthread), so it runs in
 * the busybox-only image.
 *
 *   upstream [PORT]    listen on every address of the container, port 8082 by default
 *
 * One thread per connection (of-watchdog keeps a pool of them); HTTP/1.1 connections stay open
 * unless the client sends "Connection: close", HTTP/1.0 ones only with "Connection: keep-alive".
 * Request bodies may have a Content-Length or be chunked (of-watchdog streams them chunked).
 *
 * With no `handler` environment variable, or handler=cat, a call is answered in the thread
 * without forking: 200 with the request body echoed and a Content-Length.
 *
 * Any other `handler` is a shell snippet, run per call by /bin/sh -c as the classic watchdog
 * would run fprocess: the body on stdin, the request as variables (Http_Method, Http_Path,
 * Http_Query only when there is a query, and each header as Http_ + its name with every
 * character other than a letter or digit made "_", e.g. Http_X_Call_Id), the reply on stdout.
 * Its output is held until the request body has been read and the snippet has exited (then the
 * reply has a Content-Length: 200 when it exited 0, else 500 with its stderr after its stdout) or
 * has written STREAM_AT bytes (then it is a 200 streamed chunked as it is written; should the
 * snippet then fail, its stderr ends the stream and the connection is closed without the last
 * chunk, so the client sees a truncated reply). A HEAD gets the Content-Length of what the
 * snippet wrote, and no body. Content-Type is $content_type, text/plain by default.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define READ_BUF (64 * 1024)      /* per connection; also the largest request head */
#define IO_BUF (64 * 1024)        /* copies between the socket and the snippet */
#define STREAM_AT (1024 * 1024)   /* a snippet's output past this is streamed */
#define STDERR_MAX (1024 * 1024)  /* the snippet's stderr kept for a 500 */
#define KEEP_BUF (1024 * 1024)    /* echo buffers larger than this are freed after the call */
#define MAX_HEADERS 100

static const char *handler;     /* NULL: echo in-process */
static const char *content_type;

struct conn {
	int fd;
	char *buf;
	size_t start, end; /* unread bytes are buf[start..end) */
};

struct request {
	char *method, *target;
	int minor; /* HTTP/1.minor */
	char *names[MAX_HEADERS], *values[MAX_HEADERS];
	int nheaders;
	int chunked, keep_alive, expect_continue;
	long long content_length;
};

/* The request body, decoded while it is read. */
struct body {
	struct conn *c;
	int chunked, done, need_crlf;
	long long left; /* of the body (Content-Length) or of the current chunk */
};

struct buf {
	char *data;
	size_t len, cap;
};

static int buf_append(struct buf *b, const char *data, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		char *p = realloc(b->data, cap);
		if (!p)
			return -1;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
	return 0;
}

static int writev_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	struct iovec one = { .iov_base = (void *)p, .iov_len = n };
	return writev_all(fd, &one, 1);
}

/* Read more from the socket into the connection's buffer: >0 bytes, 0 end, -1 error. */
static ssize_t conn_fill(struct conn *c)
{
	if (c->start > 0 && c->start == c->end)
		c->start = c->end = 0;
	if (c->end == READ_BUF && c->start > 0) {
		memmove(c->buf, c->buf + c->start, c->end - c->start);
		c->end -= c->start;
		c->start = 0;
	}
	if (c->end == READ_BUF)
		return -1; /* a line or head longer than the buffer */
	for (;;) {
		ssize_t n = read(c->fd, c->buf + c->end, READ_BUF - c->end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0)
			c->end += (size_t)n;
		return n;
	}
}

/* One line of the socket, without its CRLF (or LF); NULL at the end or on errors. */
static char *conn_line(struct conn *c)
{
	for (;;) {
		char *nl = memchr(c->buf + c->start, '\n', c->end - c->start);
		if (nl) {
			char *line = c->buf + c->start;
			c->start = (size_t)(nl - c->buf) + 1;
			*nl = '\0';
			if (nl > line && nl[-1] == '\r')
				nl[-1] = '\0';
			return line;
		}
		if (conn_fill(c) <= 0)
			return NULL;
	}
}

/* Up to max bytes of the body into dst: >0 bytes, 0 at its end, -1 on errors. */
static ssize_t body_read(struct body *b, char *dst, size_t max)
{
	struct conn *c = b->c;
	if (b->done)
		return 0;
	if (b->chunked && b->left == 0) {
		char *line;
		if (b->need_crlf) {
			if (!(line = conn_line(c)) || *line)
				return -1;
			b->need_crlf = 0;
		}
		if (!(line = conn_line(c)))
			return -1;
		char *end;
		errno = 0;
		long long size = strtoll(line, &end, 16);
		if (end == line || errno || size < 0 || (*end && *end != ';' && *end != ' ' && *end != '\t'))
			return -1;
		if (size == 0) {
			/* Trailers, if any, up to the blank line. */
			do {
				if (!(line = conn_line(c)))
					return -1;
			} while (*line);
			b->done = 1;
			return 0;
		}
		b->left = size;
		b->need_crlf = 1;
	}
	if (b->left == 0) {
		b->done = 1;
		return 0;
	}
	if ((long long)max > b->left)
		max = (size_t)b->left;
	ssize_t n;
	if (c->start < c->end) {
		n = (ssize_t)(c->end - c->start);
		if ((size_t)n > max)
			n = (ssize_t)max;
		memcpy(dst, c->buf + c->start, (size_t)n);
		c->start += (size_t)n;
	} else {
		/* Nothing buffered: straight from the socket, never past this body. */
		do
			n = read(c->fd, dst, max);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			return -1;
	}
	b->left -= n;
	if (!b->chunked && b->left == 0)
		b->done = 1;
	return n;
}

/* Whether a comma-separated header value holds the token, case-insensitively. */
static int has_token(const char *value, const char *token)
{
	size_t len = strlen(token);
	for (const char *p = value; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == len && strncasecmp(p, token, len) == 0)
			return 1;
		p = e;
	}
	return 0;
}

/* Read and parse a request head: 1 parsed, 0 the client closed between requests, -1 bad. */
static int read_head(struct conn *c, struct request *r)
{
	char *end;
	for (;;) {
		/* Tolerate the empty lines RFC 9112 allows before a request line. */
		while (c->start < c->end && (c->buf[c->start] == '\r' || c->buf[c->start] == '\n'))
			c->start++;
		end = memmem(c->buf + c->start, c->end - c->start, "\r\n\r\n", 4);
		if (end)
			break;
		ssize_t n = conn_fill(c);
		if (n <= 0)
			return (n == 0 && c->start == c->end) ? 0 : -1;
	}
	char *head = c->buf + c->start;
	end[2] = '\0';
	c->start = (size_t)(end + 4 - c->buf);

	memset(r, 0, sizeof(*r));
	r->content_length = 0;
	char *save, *line = strtok_r(head, "\r\n", &save);
	if (!line)
		return -1;
	char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2)
		return -1;
	*sp1 = *sp2 = '\0';
	r->method = line;
	r->target = sp1 + 1;
	if (strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)sp2[8]))
		return -1;
	r->minor = sp2[8] - '0';
	r->keep_alive = r->minor >= 1;
	int has_length = 0, has_te = 0;
	while ((line = strtok_r(NULL, "\r\n", &save))) {
		char *colon = strchr(line, ':');
		if (!colon || colon == line)
			continue;
		*colon = '\0';
		char *value = colon + 1, *vend = value + strlen(value);
		while (*value == ' ' || *value == '\t')
			value++;
		while (vend > value && (vend[-1] == ' ' || vend[-1] == '\t'))
			*--vend = '\0';
		if (r->nheaders < MAX_HEADERS) {
			r->names[r->nheaders] = line;
			r->values[r->nheaders++] = value;
		}
		if (strcasecmp(line, "Content-Length") == 0) {
			char *e;
			errno = 0;
			r->content_length = strtoll(value, &e, 10);
			if (e == value || *e || errno || r->content_length < 0)
				return -1;
			has_length = 1;
		} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
			has_te = 1;
			r->chunked = has_token(value, "chunked");
		} else if (strcasecmp(line, "Connection") == 0) {
			if (has_token(value, "close"))
				r->keep_alive = 0;
			else if (has_token(value, "keep-alive"))
				r->keep_alive = 1;
		} else if (strcasecmp(line, "Expect") == 0) {
			r->expect_continue = strcasecmp(value, "100-continue") == 0;
		}
	}
	if (has_te && !r->chunked)
		return -1; /* a transfer coding we cannot decode */
	if (r->chunked && has_length)
		r->content_length = 0; /* RFC 9112 6.3: Transfer-Encoding wins */
	return 1;
}

/* The reply's head, with the body if given: a Content-Length, or chunked when length < 0. */
static int send_head(int fd, struct request *r, const char *status, long long length, const char *body, size_t body_len)
{
	char head[512];
	const char *connection = !r->keep_alive ? "Connection: close\r\n"
				 : r->minor == 0 ? "Connection: keep-alive\r\n" : "";
	int n;
	if (length >= 0)
		n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %lld\r\n%s\r\n",
			     status, content_type, length, connection);
	else
		n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n%s\r\n",
			     status, content_type, connection);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, body_len}};
	return writev_all(fd, iov, body_len ? 2 : 1);
}

static int send_chunk(int fd, const char *data, size_t n)
{
	char size[32];
	if (n == 0)
		return 0;
	int len = snprintf(size, sizeof(size), "%zx\r\n", n);
	struct iovec iov[3] = {{size, (size_t)len}, {(void *)data, n}, {"\r\n", 2}};
	return writev_all(fd, iov, 3);
}

static int continue_if_expected(struct conn *c, struct request *r)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	if (r->expect_continue && (r->chunked || r->content_length > 0))
		return write_all(c->fd, cont, sizeof(cont) - 1);
	return 0;
}

/* The in-process function: echo the body. 0 to keep the connection, -1 to close it. */
static int echo(struct conn *c, struct request *r, struct buf *body)
{
	struct body b = {.c = c, .chunked = r->chunked, .left = r->chunked ? 0 : r->content_length};
	/* Reading the body may move the head's bytes (r->method) in the buffer: test it now. */
	int head_only = strcmp(r->method, "HEAD") == 0;
	body->len = 0;
	if (continue_if_expected(c, r) < 0)
		return -1;
	for (;;) {
		if (body->cap - body->len < IO_BUF) {
			char *p = realloc(body->data, body->cap ? body->cap * 2 : IO_BUF * 2);
			if (!p)
				return -1;
			body->data = p;
			body->cap = body->cap ? body->cap * 2 : IO_BUF * 2;
		}
		ssize_t n = body_read(&b, body->data + body->len, body->cap - body->len);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		body->len += (size_t)n;
	}
	if (send_head(c->fd, r, "200 OK", (long long)body->len, body->data, head_only ? 0 : body->len) < 0)
		return -1;
	if (body->cap > KEEP_BUF) {
		free(body->data);
		*body = (struct buf){0};
	}
	return r->keep_alive ? 0 : -1;
}

/* "Http_" + name with every character but letters and digits made "_" + "=" + value. */
static char *http_var(const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);
	char *s = malloc(5 + n + 1 + v + 1);
	if (!s)
		return NULL;
	memcpy(s, "Http_", 5);
	for (size_t i = 0; i < n; i++)
		s[5 + i] = isalnum((unsigned char)name[i]) ? name[i] : '_';
	s[5 + n] = '=';
	memcpy(s + 6 + n, value, v + 1);
	return s;
}

/* Add var to vars[0..*n), replacing a variable of the same name: the last one wins. */
static void set_var(char **vars, int *n, char *var)
{
	if (!var)
		return;
	size_t len = (size_t)(strchr(var, '=') - var) + 1;
	for (int i = 0; i < *n; i++) {
		if (strncmp(vars[i], var, len) == 0) {
			free(vars[i]);
			vars[i] = var;
			return;
		}
	}
	vars[(*n)++] = var;
}

struct feeder {
	struct body body;
	int in_fd, done_fd, result;
};

/* Thread: copy the request body into the snippet's stdin, then say so on done_fd. The whole body
 * is read even when the snippet does not read it, so the connection can serve the next call. */
static void *feed(void *arg)
{
	struct feeder *f = arg;
	char *buf = malloc(IO_BUF);
	f->result = buf ? 0 : -1;
	while (buf) {
		ssize_t n = body_read(&f->body, buf, IO_BUF);
		if (n <= 0) {
			f->result = (int)n;
			break;
		}
		if (f->in_fd >= 0 && write_all(f->in_fd, buf, (size_t)n) < 0) {
			close(f->in_fd); /* EPIPE: the snippet is not reading; drop the rest */
			f->in_fd = -1;
		}
	}
	free(buf);
	if (f->in_fd >= 0)
		close(f->in_fd);
	while (write(f->done_fd, "", 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void kill_group(pid_t pid)
{
	kill(-pid, SIGKILL);
}

/* Run the handler snippet for one call. 0 to keep the connection, -1 to close it. */
static int run_handler(struct conn *c, struct request *r)
{
	int result = -1, status = 0;
	pid_t pid = -1;
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, done[2] = {-1, -1};
	int nvars = 0, nenv = 0;
	char **vars = NULL, **envp = NULL;
	struct buf output = {0}, errors = {0};
	char *chunk = NULL;
	struct feeder f = {.in_fd = -1, .done_fd = -1};
	pthread_t feeder;
	int feeding = 0, body_done = 0, streaming = 0, head_only = strcmp(r->method, "HEAD") == 0;
	long long out_total = 0;

	/* The environment: ours without Http_* variables, then the request's. */
	for (char **e = environ; *e; e++)
		nenv++;
	vars = calloc((size_t)r->nheaders + 3, sizeof(char *));
	envp = calloc((size_t)nenv + (size_t)r->nheaders + 4, sizeof(char *));
	if (!vars || !envp)
		goto out;
	for (int i = 0; i < r->nheaders; i++)
		set_var(vars, &nvars, http_var(r->names[i], r->values[i]));
	char *query = strchr(r->target, '?');
	if (query)
		*query++ = '\0';
	set_var(vars, &nvars, http_var("Method", r->method));
	set_var(vars, &nvars, http_var("Path", r->target));
	if (query && *query)
		set_var(vars, &nvars, http_var("Query", query));
	int n = 0;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "Http_", 5) != 0)
			envp[n++] = *e;
	for (int i = 0; i < nvars; i++)
		envp[n++] = vars[i];
	envp[n] = NULL;

	dprintf(2, "request %s %s\n", r->method, r->target);

	/* Every descriptor is close-on-exec, so another thread's snippet never holds our pipes. */
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
	    pipe2(done, O_CLOEXEC) < 0)
		goto out;
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none, pipe_signal;
	sigemptyset(&none);
	sigemptyset(&pipe_signal);
	sigaddset(&pipe_signal, SIGPIPE);
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_adddup2(&actions, in[0], 0);
	posix_spawn_file_actions_adddup2(&actions, out[1], 1);
	posix_spawn_file_actions_adddup2(&actions, err[1], 2);
	posix_spawnattr_init(&attr);
	/* Its own process group, to kill whatever it started; SIGPIPE as usual (we ignore it). */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigdefault(&attr, &pipe_signal);
	posix_spawnattr_setsigmask(&attr, &none);
	char *argv[] = {"sh", "-c", (char *)handler, NULL};
	int spawned = posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attr);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	in[0] = out[1] = err[1] = -1;
	if (spawned != 0) {
		pid = -1;
		char message[128];
		int len = snprintf(message, sizeof(message), "cannot run /bin/sh: %s\n", strerror(spawned));
		write_all(2, message, (size_t)len);
		r->keep_alive = 0; /* its body is not read */
		send_head(c->fd, r, "500 Internal Server Error", len, message, (size_t)len);
		goto out;
	}

	if (continue_if_expected(c, r) < 0)
		goto out;
	f.body = (struct body){.c = c, .chunked = r->chunked, .left = r->chunked ? 0 : r->content_length};
	if (!r->chunked && r->content_length == 0) {
		close(in[1]);
		in[1] = -1;
		body_done = 1;
	} else {
		f.in_fd = in[1];
		f.done_fd = done[1];
		in[1] = -1;
		if (pthread_create(&feeder, NULL, feed, &f) != 0) {
			close(f.in_fd);
			goto out;
		}
		feeding = 1;
	}

	chunk = malloc(IO_BUF);
	if (!chunk)
		goto out;
	while (out[0] >= 0 || err[0] >= 0 || !body_done) {
		struct pollfd fds[3];
		int nfds = 0, i_out = -1, i_err = -1, i_other = -1;
		if (out[0] >= 0) {
			fds[nfds] = (struct pollfd){.fd = out[0], .events = POLLIN};
			i_out = nfds++;
		}
		if (err[0] >= 0) {
			fds[nfds] = (struct pollfd){.fd = err[0], .events = POLLIN};
			i_err = nfds++;
		}
		/* While the body is read: when it is done. Then: whether the client went away. */
		fds[nfds] = (struct pollfd){.fd = body_done ? c->fd : done[0], .events = body_done ? POLLRDHUP : POLLIN};
		i_other = nfds++;
		if (poll(fds, (nfds_t)nfds, -1) < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		if (fds[i_other].revents) {
			if (body_done)
				goto out; /* the client closed its connection: stop the snippet */
			pthread_join(feeder, NULL);
			feeding = 0;
			body_done = 1;
			if (f.result < 0)
				goto out;
		}
		if (i_out >= 0 && fds[i_out].revents) {
			ssize_t got = read(out[0], chunk, IO_BUF);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				close(out[0]);
				out[0] = -1;
			} else {
				out_total += got;
				if (streaming) {
					if (send_chunk(c->fd, chunk, (size_t)got) < 0)
						goto out;
				} else if (!head_only && buf_append(&output, chunk, (size_t)got) < 0) {
					goto out;
				}
			}
		}
		if (i_err >= 0 && fds[i_err].revents) {
			ssize_t got = read(err[0], chunk, IO_BUF);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				close(err[0]);
				err[0] = -1;
			} else if (errors.len < STDERR_MAX) {
				if (buf_append(&errors, chunk, (size_t)got < STDERR_MAX - errors.len ? (size_t)got : STDERR_MAX - errors.len) < 0)
					goto out;
			}
		}
		/* Chunked only to HTTP/1.1 clients. */
		if (!streaming && body_done && output.len >= STREAM_AT && r->minor >= 1) {
			if (send_head(c->fd, r, "200 OK", -1, NULL, 0) < 0 ||
			    send_chunk(c->fd, output.data, output.len) < 0)
				goto out;
			streaming = 1;
			free(output.data);
			output = (struct buf){0};
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (streaming) {
		if (!ok) {
			/* Too late for a 500: the errors end the stream, which is cut short. */
			send_chunk(c->fd, errors.data, errors.len);
			goto out;
		}
		if (write_all(c->fd, "0\r\n\r\n", 5) < 0)
			goto out;
	} else {
		if (!ok) {
			out_total += (long long)errors.len;
			if (!head_only && errors.len && buf_append(&output, errors.data, errors.len) < 0)
				goto out;
		}
		if (send_head(c->fd, r, ok ? "200 OK" : "500 Internal Server Error", out_total, output.data,
			      head_only ? 0 : output.len) < 0)
			goto out;
	}
	result = r->keep_alive ? 0 : -1;
	goto out;

out:
	free(chunk);
	if (pid > 0) {
		kill_group(pid);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (feeding) {
		/* It ends once the socket, which the caller closes on -1, is shut down. */
		shutdown(c->fd, SHUT_RDWR);
		pthread_join(feeder, NULL);
		result = -1;
	}
	int fds_to_close[] = {in[0], in[1], out[0], out[1], err[0], err[1], done[0], done[1]};
	for (size_t i = 0; i < sizeof(fds_to_close) / sizeof(*fds_to_close); i++)
		if (fds_to_close[i] >= 0)
			close(fds_to_close[i]);
	for (int i = 0; i < nvars; i++)
		free(vars[i]);
	free(vars);
	free(envp);
	free(output.data);
	free(errors.data);
	return result;
}

static void *serve(void *arg)
{
	struct conn c = {.fd = (int)(long)arg};
	struct request r;
	struct buf body = {0};
	c.buf = malloc(READ_BUF);
	while (c.buf) {
		int got = read_head(&c, &r);
		if (got == 0)
			break;
		if (got < 0) {
			static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
			write_all(c.fd, bad, sizeof(bad) - 1);
			break;
		}
		if ((handler ? run_handler(&c, &r) : echo(&c, &r, &body)) < 0)
			break;
	}
	free(body.data);
	free(c.buf);
	close(c.fd);
	return NULL;
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 8082;
	handler = getenv("handler");
	if (handler && (!*handler || strcmp(handler, "cat") == 0))
		handler = NULL;
	content_type = getenv("content_type");
	if (!content_type || !*content_type)
		content_type = "text/plain";
	signal(SIGPIPE, SIG_IGN);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 1024) < 0) {
		perror("upstream: listen");
		return 1;
	}
	dprintf(2, "upstream: listening on port %d, %s\n", port, handler ? "running the handler per call" : "echoing bodies in-process");

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
				usleep(10000);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pthread_t thread;
		if (pthread_create(&thread, &attr, serve, (void *)(long)fd) != 0)
			close(fd);
	}
}
