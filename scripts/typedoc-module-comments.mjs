// TypeDoc plugin: keeps the module comments that declarations point to. Many source files open
// with a module comment (the design of the file, its kernel sources) and their declarations say
// "See the module comment". TypeDoc documents each package as one module (its src/index.ts), so
// those file comments would appear nowhere; this plugin appends a file's module comment, as a
// "Remarks" section with its @see lines, to every declaration of that file whose comment mentions
// "the module comment".
//
// A module comment is the first doc comment of a file when the file's first statement is an
// import or export (which cannot carry a doc comment of its own).
import ts from 'typescript';
import { Comment, CommentTag, Converter } from 'typedoc';

const MENTION = /\bthe module comment\b/i;

/** @param {import('typedoc').Application} app */
export function load(app) {
  /** @type {WeakMap<ts.SourceFile, Comment | null>} */
  const byFile = new WeakMap();

  /** @param {import('typedoc').Context} context @param {ts.SourceFile} file */
  const moduleComment = (context, file) => {
    if (byFile.has(file)) return byFile.get(file);
    const first = file.statements[0];
    let comment = null;
    if (first && (ts.isImportDeclaration(first) || ts.isExportDeclaration(first))) {
      comment = context.getNodeComment(first, false) ?? null;
    }
    byFile.set(file, comment);
    return comment;
  };

  const mentions = (/** @type {Comment | undefined} */ c) =>
    c !== undefined &&
    (MENTION.test(Comment.combineDisplayParts(c.summary)) ||
      c.blockTags.some((t) => MENTION.test(Comment.combineDisplayParts(t.content))));

  /**
   * @param {import('typedoc').Context} context
   * @param {import('typedoc').Reflection} reflection
   * @param {ts.Node | undefined} node
   */
  const attach = (context, reflection, node) => {
    const comment = reflection.comment;
    if (!mentions(comment)) return;
    const declaration = node ?? context.getSymbolFromReflection(reflection)?.declarations?.[0];
    const file = declaration?.getSourceFile();
    if (!file) return;
    const source = moduleComment(context, file);
    if (!source || source === comment) return;
    comment.blockTags.push(new CommentTag('@remarks', Comment.cloneDisplayParts(source.summary)));
    for (const tag of source.blockTags) {
      if (tag.tag === '@see') comment.blockTags.push(new CommentTag('@see', Comment.cloneDisplayParts(tag.content)));
    }
  };

  app.converter.on(Converter.EVENT_CREATE_DECLARATION, (context, reflection) => attach(context, reflection, undefined));
  app.converter.on(Converter.EVENT_CREATE_SIGNATURE, (context, reflection, node) => attach(context, reflection, node));
}
