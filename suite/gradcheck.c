/* gradcheck.c — directional finite-difference gradient checks (see gradcheck.h). */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "lra_rng.h"
#include "util.h"

lra_gradcheck_opts lra_gradcheck_defaults(void)
{
    lra_gradcheck_opts o = {.directions = 4, .eps = 1e-2, .tol_pass = 1e-3, .tol_warn = 1e-2,
                            .seed = 12345};
    return o;
}

lra_gradcheck_result lra_gradcheck(lra_loss_fn f, void *ctx, float *x, const float *g, size_t n,
                                   const lra_gradcheck_opts *opt)
{
    lra_gradcheck_opts o = opt ? *opt : lra_gradcheck_defaults();
    lra_gradcheck_result r = {0.0, 0.0, 0.0, 0, LRA_GC_PASS};
    float *x0 = lra_alloc(n * sizeof(float), "gradient check copy");
    float *u = lra_alloc(n * sizeof(float), "gradient check direction");
    double gnorm = 0.0;
    for (size_t i = 0; i < n; i++) {
        x0[i] = x[i];
        gnorm += (double)g[i] * g[i];
    }
    double floor_ = fmax(sqrt(gnorm / (double)(n ? n : 1)), 1e-6);
    uint64_t sig0 = 0;
    if (o.signature) {
        f(ctx);
        sig0 = o.signature(ctx);
    }

    /* Up to four times the directions are drawn when some straddle a kink. */
    int done = 0;
    for (int d = 0; done < o.directions && d < 4 * o.directions; d++) {
        uint64_t key = lra_key(o.seed, (uint64_t)d);
        double un = 0.0;
        for (size_t i = 0; i < n; i++) {
            u[i] = lra_normal(key, i);
            un += (double)u[i] * u[i];
        }
        un = sqrt(un);
        double an = 0.0;
        for (size_t i = 0; i < n; i++) {
            u[i] = (float)(u[i] / un);
            an += (double)g[i] * u[i];
        }
        for (size_t i = 0; i < n; i++) x[i] = x0[i] + (float)o.eps * u[i];
        double lp = f(ctx);
        int kink = o.signature && o.signature(ctx) != sig0;
        for (size_t i = 0; i < n; i++) x[i] = x0[i] - (float)o.eps * u[i];
        double lm = f(ctx);
        kink = kink || (o.signature && o.signature(ctx) != sig0);
        for (size_t i = 0; i < n; i++) x[i] = x0[i];
        if (kink) {
            r.skipped++;
            continue;
        }
        done++;
        double fd = (lp - lm) / (2.0 * o.eps);
        double rel = fabs(fd - an) / fmax(fmax(fabs(fd), fabs(an)), floor_);
        if (!isfinite(fd) || !isfinite(an)) rel = INFINITY;
        if (!(rel <= r.worst_rel)) { /* also takes NaN */
            r.worst_rel = rel;
            r.fd_at_worst = fd;
            r.an_at_worst = an;
        }
    }
    if (done < o.directions) { /* nowhere smooth enough to judge: not a pass */
        r.worst_rel = INFINITY;
        r.verdict = LRA_GC_FAIL;
    } else if (!(r.worst_rel < o.tol_warn))
        r.verdict = LRA_GC_FAIL;
    else if (!(r.worst_rel < o.tol_pass))
        r.verdict = LRA_GC_WARN;
    lra_free(x0);
    lra_free(u);
    return r;
}

void lra_gradcheck_print(const char *name, const lra_gradcheck_result *r)
{
    static const char *const verdicts[] = {[LRA_GC_PASS] = "PASS", [LRA_GC_WARN] = "WARN",
                                           [LRA_GC_FAIL] = "FAIL"};
    printf("  %-28s worst rel err %.2e (fd %+.6e, analytic %+.6e) %s", name, r->worst_rel,
           r->fd_at_worst, r->an_at_worst, verdicts[r->verdict]);
    if (r->skipped) printf(" (%d directions crossed a kink, redrawn)", r->skipped);
    printf("\n");
}
