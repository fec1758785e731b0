// SPDX-License-Identifier: Apache-2.0
/** Where this browser keeps a person's Playground key: per person and organization, in
 * localStorage (shared by the tabs), until it expires, is refused or they sign out. */

const KEY_STORAGE = "potluck.playground-key.";
export interface StoredKey { secret: string; issued: boolean; expiresAt: string | null }

export function keyStorage(user: number | string, org: string): string {
  return `${KEY_STORAGE}${user}.${org}`;
}

/** Sign-out forgets every Playground key this browser holds. */
export function forgetPlaygroundKeys(): void {
  for (const store of [localStorage, sessionStorage]) {
    for (const name of Object.keys(store)) {
      if (name.startsWith(KEY_STORAGE)) store.removeItem(name);
    }
  }
}

export function readKey(name: string): StoredKey | null {
  try {
    const stored = JSON.parse(localStorage.getItem(name) ?? "null") as StoredKey | null;
    if (!stored?.secret) return null;
    if (stored.expiresAt && Date.parse(stored.expiresAt) <= Date.now() + 60_000) return null;
    return stored;
  } catch {
    return null;
  }
}

