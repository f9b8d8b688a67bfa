/**
 * Syntax check of a Kubernetes label selector string (the `labelSelector` query parameter),
 * so that a typo in `LIBCLUSTER_KUBERNETES_SELECTOR` is a startup error instead of a 400 at
 * every poll. Accepts what the API server accepts: comma-separated requirements
 * `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (v1,v2)`,
 * `key notin (v1,v2)`, `key>n`, `key<n`. A key is `[prefix/]name` (prefix: a DNS subdomain of
 * at most 253 characters; name: at most 63 of `[A-Za-z0-9_.-]`, alphanumeric at both ends);
 * a value is empty or like a name.
 *
 * @returns undefined when the selector is valid, else what is wrong with it
 */
export function labelSelectorProblem(selector: string): string | undefined {
  const trimmed = selector.trim();
  if (trimmed === '') return 'is empty';
  for (const raw of splitRequirements(trimmed)) {
    const req = raw.trim();
    if (req === '') return `has an empty requirement (a stray comma) in "${selector}"`;
    const problem = requirementProblem(req);
    if (problem) return `${problem} in requirement "${req}"`;
  }
  return undefined;
}

const NAME = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Splits on commas outside parentheses; an unbalanced `(` keeps the rest in one piece. */
function splitRequirements(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const ch = selector[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(selector.slice(start));
  return parts;
}

function keyProblem(key: string): string | undefined {
  if (key === '') return 'a label key is missing';
  const slash = key.indexOf('/');
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (slash !== -1) {
    const prefix = key.slice(0, slash);
    if (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)) {
      return `"${prefix}" is not a valid label key prefix (a DNS subdomain)`;
    }
  }
  if (!NAME.test(name)) {
    return `"${name}" is not a valid label key (at most 63 characters of A-Z, a-z, 0-9, '-', '_', '.', alphanumeric at both ends)`;
  }
  return undefined;
}

function valueProblem(value: string): string | undefined {
  if (value === '' || NAME.test(value)) return undefined;
  return `"${value}" is not a valid label value (at most 63 characters of A-Z, a-z, 0-9, '-', '_', '.', alphanumeric at both ends)`;
}

function requirementProblem(req: string): string | undefined {
  if (req.startsWith('!')) return keyProblem(req.slice(1).trim());
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(req);
  if (set) {
    const keyIssue = keyProblem(set[1]);
    if (keyIssue) return keyIssue;
    const values = set[3].split(',').map((v) => v.trim());
    if (values.length === 1 && values[0] === '') return `"${set[2]}" needs at least one value`;
    for (const v of values) {
      const issue = valueProblem(v);
      if (issue) return issue;
    }
    return undefined;
  }
  if (/\s(in|notin)\b/.test(req) || req.includes('(') || req.includes(')')) {
    return 'a set requirement must read "key in (a,b)" or "key notin (a,b)"';
  }
  const op = /^([^=!<>\s]*)\s*(==|=|!=|<|>)\s*(.*)$/.exec(req);
  if (op) {
    const keyIssue = keyProblem(op[1]);
    if (keyIssue) return keyIssue;
    const value = op[3];
    if (op[2] === '<' || op[2] === '>') {
      return /^-?\d+$/.test(value) ? undefined : `"${op[2]}" needs an integer`;
    }
    if (/[=!<>]/.test(value)) return `unexpected operator in value "${value}"`;
    return valueProblem(value);
  }
  if (/[=!<>\s]/.test(req))
    return 'unexpected character (operators: =, ==, !=, in, notin, !, <, >)';
  return keyProblem(req);
}
