#!/usr/bin/env bash
# Runs every test project (oracle data is read from ../shared beside the repository).
set -euo pipefail
cd "$(dirname "$0")"
dotnet test ExpertScope.slnx -c Release --logger "trx;LogFilePrefix=tests" --logger "console;verbosity=minimal" "$@"
