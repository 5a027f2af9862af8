#!/usr/bin/env bash
# Placeholder until this feature lands: replaced in the same session.
echo "0 passed, 0 failed"
