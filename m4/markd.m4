# MARKD_CHECK_CFLAG(FLAG, [ACTION-IF-OK], [ACTION-IF-NOT])
# Compiles and links an empty program with -Werror FLAG.
AC_DEFUN([MARKD_CHECK_CFLAG], [
  AC_MSG_CHECKING([whether $CC accepts $1])
  markd_save_CFLAGS="$CFLAGS"
  markd_save_LDFLAGS="$LDFLAGS"
  CFLAGS="$CFLAGS -Werror $1"
  LDFLAGS="$LDFLAGS $1"
  AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])],
    [AC_MSG_RESULT([yes]); $2], [AC_MSG_RESULT([no]); $3])
  CFLAGS="$markd_save_CFLAGS"
  LDFLAGS="$markd_save_LDFLAGS"
])

# MARKD_PTHREAD: POSIX threads through -pthread (gcc and clang on Linux).
AC_DEFUN([MARKD_PTHREAD], [
  MARKD_CHECK_CFLAG([-pthread], [PTHREAD_CFLAGS=-pthread],
    [AC_MSG_ERROR([POSIX threads (-pthread) are required])])
  AC_SUBST([PTHREAD_CFLAGS])
])
