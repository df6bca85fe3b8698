// slugify, a function of the example project (examples/project).
//
// {"title": "Hello, World!"} -> {"slug": "hello-world"}
export const handler = async (event) => {
  const title = String(event?.title ?? '');
  const slug = title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return { slug, stage: process.env.STAGE ?? '' };
};
