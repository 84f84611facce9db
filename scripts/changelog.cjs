// The changelog lines that `changeset version` writes (".changeset/config.json" → "changelog").
// One line per changeset (its summary, after the short hash of the commit that added it) and, for
// the workspace dependencies a release moved, ONE line naming them. The default generator writes
// an "Updated dependencies" line per changeset instead, the same lines in every package of the
// fixed group. CommonJS because @changesets/cli 2.x loads it with require().
'use strict';

/** @type {import('@changesets/types').GetReleaseLine} */
async function getReleaseLine(changeset) {
  const [first, ...rest] = changeset.summary.split('\n').map((l) => l.trimEnd());
  const hash = changeset.commit ? `${changeset.commit.slice(0, 7)}: ` : '';
  return [`- ${hash}${first}`, ...rest.map((l) => (l ? `  ${l}` : l))].join('\n');
}

/** @type {import('@changesets/types').GetDependencyReleaseLine} */
async function getDependencyReleaseLine(_changesets, dependencies) {
  if (dependencies.length === 0) return '';
  const versions = new Set(dependencies.map((d) => d.newVersion));
  const names = dependencies.map((d) => d.name).sort();
  if (versions.size === 1) return `- Dependencies: ${names.join(', ')} at ${[...versions][0]}`;
  return `- Dependencies: ${dependencies
    .map((d) => `${d.name}@${d.newVersion}`)
    .sort()
    .join(', ')}`;
}

module.exports = { getReleaseLine, getDependencyReleaseLine };
