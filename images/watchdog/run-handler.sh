#!/bin/sh
# The function of both test images: the shell snippet in $handler (default `cat`), with the
# request body on stdin, the request as Http_* variables and the reply on stdout.
#
# It is a file because the classic watchdog splits fprocess on spaces and gives it to no
# shell (fprocess='sh -c "sleep 1; echo x"' cannot work); tests set `handler` instead.
exec sh -c "$handler"
