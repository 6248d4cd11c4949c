/**
 * Task tags as the API accepts them: at most 8 per task, each 1 to 64 characters of
 * `A-Z a-z 0-9 : _ . -`. Pure: the submit form's tags input and the list's tag filter both check
 * with these, so a tag refused here is never sent.
 */

export const MAX_TAGS = 8;
export const TAG_PATTERN = /^[A-Za-z0-9:_.-]{1,64}$/;
/** The key of the submit form's tags input among its fields (params cannot start with "__"). */
export const TAGS_FIELD = "__tags";

/** Why `tag` is not a tag ("" when it is one). */
export function checkTag(tag) {
  if (typeof tag !== "string" || tag === "") return "Enter a tag.";
  if (tag.length > 64) return "A tag has at most 64 characters.";
  if (!TAG_PATTERN.test(tag)) return `"${tag}" is not a tag: use letters, digits and : _ . - only.`;
  return "";
}

/**
 * Comma-separated text -> `{ tags, error }`. Blanks around and between commas are dropped and a
 * repeated tag is kept once; `error` says what is wrong ("" when nothing is).
 */
export function parseTags(text) {
  const tags = [];
  const raw = typeof text === "string" ? text : "";
  for (const part of raw.split(",")) {
    const tag = part.trim();
    if (!tag || tags.includes(tag)) continue;
    const error = checkTag(tag);
    if (error) return { tags: [], error };
    tags.push(tag);
  }
  if (tags.length > MAX_TAGS) return { tags: [], error: `At most ${MAX_TAGS} tags.` };
  return { tags, error: "" };
}
