#!/usr/bin/env bash
# Refresh the Swagger UI and ReDoc files under app/api/docs_static from their npm packages
# (the server serves them itself, so /docs and /redoc work offline). Needs npm.
# Usage: bash scripts/vendor_docs_assets.sh [SWAGGER_UI_VERSION] [REDOC_VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
swagger_version=${1:-5.35.0}
redoc_version=${2:-2.5.4}
target=app/api/docs_static
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "swagger-ui-dist@$swagger_version" "redoc@$redoc_version" >/dev/null)
mkdir -p "$work/swagger" "$work/redoc"
tar xzf "$work/swagger-ui-dist-$swagger_version.tgz" -C "$work/swagger"
tar xzf "$work/redoc-$redoc_version.tgz" -C "$work/redoc"

rm -rf "$target/swagger-ui" "$target/redoc"
mkdir -p "$target/swagger-ui" "$target/redoc"
for file in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css \
    favicon-32x32.png LICENSE NOTICE; do
    cp "$work/swagger/package/$file" "$target/swagger-ui/"
done
for file in bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt LICENSE; do
    cp "$work/redoc/package/$file" "$target/redoc/"
done
# The bundles name source maps that are not vendored: drop the reference, so browsers'
# developer tools do not ask for them (a 404 per page view).
sed -i '/^\/\/# sourceMappingURL=/d' "$target/swagger-ui/swagger-ui-bundle.js" \
    "$target/redoc/redoc.standalone.js"
sed -i '/^\/\*# sourceMappingURL=/d' "$target/swagger-ui/swagger-ui.css"
printf 'swagger-ui-dist %s\nredoc %s\n' "$swagger_version" "$redoc_version" > "$target/VERSIONS"
