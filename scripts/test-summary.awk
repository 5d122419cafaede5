# Sums up a `cargo test --no-fail-fast` log (make test): counts every test that reported a
# result, whichever binary it ran in, and names each test binary that never finished (it
# crashed, was killed, or never built). Prints those, then one closing line:
#   tests: N passed, N failed, N skipped
# where an unfinished binary counts as one failure. Exits 1 when anything failed.
#
# `test NAME ... ok|FAILED|ignored` lines count only before a binary's `failures:` section,
# where captured output (a child test binary's, say) may hold lines of the same shape.

function close_binary() {
    if (binary != "" && !finished) {
        unfinished[++n_unfinished] = binary
    }
    binary = ""
    finished = 0
    in_failures = 0
}

/^ *Running / || /^ *Doc-tests / {
    close_binary()
    binary = $0
    sub(/^ *(Running|Doc-tests) /, "", binary)
    next
}

/^failures:$/ { in_failures = 1; next }

/^test result: / { finished = 1; in_failures = 0; next }

/^error: could not compile / {
    unbuilt[++n_unbuilt] = $0
    next
}

!in_failures && /^test .* \.\.\. (ok|FAILED|ignored)/ {
    if ($0 ~ / \.\.\. ok$/) passed++
    else if ($0 ~ / \.\.\. FAILED$/) failed++
    else if ($0 ~ / \.\.\. ignored(, .*)?$/) skipped++
}

END {
    close_binary()
    for (i = 1; i <= n_unfinished; i++) {
        printf "did not finish (crashed or killed; counted as 1 failed): %s\n", unfinished[i]
    }
    for (i = 1; i <= n_unbuilt; i++) {
        printf "did not build (counted as 1 failed): %s\n", unbuilt[i]
    }
    failed += n_unfinished + n_unbuilt
    printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped
    exit (failed > 0 ? 1 : 0)
}
