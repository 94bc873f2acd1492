/* nodeflow — NF_API marks what the library exports: the shared library is
 * built with hidden symbols, so it exports exactly the functions the
 * public headers declare (tests/exports.sh compares the two). */
#ifndef NODEFLOW_EXPORT_H
#define NODEFLOW_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define NF_API __attribute__((visibility("default")))
#else
#define NF_API
#endif

#endif
