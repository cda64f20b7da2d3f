/* What dlm-eval prints about a finished session (session.h): the table a
 * person reads (estimate, standard error and 95% interval in nats/token,
 * bits/token, bits/byte, perplexity; entropy and true NLL where known;
 * throughput; the paired difference), or one JSON object of plain numeric
 * and string fields for scripts.
 *
 *   DLM_CALL(dlm_eval_session_run(s));
 *   DLM_CALL(dlm_eval_session_write(s));
 *   if (json) dlm_eval_report_json(stdout, s); else dlm_eval_report_text(stdout, s);
 */
#ifndef DLM_EVAL_REPORT_H
#define DLM_EVAL_REPORT_H

#include <stdio.h>

#include "eval/session.h"

void dlm_eval_report_text(FILE *f, const dlm_eval_session *s);
/* Numbers with 10 significant digits; NaN and infinities as null. */
void dlm_eval_report_json(FILE *f, const dlm_eval_session *s);

#endif
