import ReactMarkdown from 'react-markdown';

/* Markdown without raw HTML: react-markdown drops HTML in the source (no
   rehype-raw) and its default URL transform refuses javascript: links. */
export default function Markdown({ children }) {
  return (
    <div className="markdown text-sm leading-relaxed break-words">
      <ReactMarkdown
        skipHtml
        components={{ a: ({ node, ...props }) => <a {...props} target="_blank" rel="noopener noreferrer nofollow" /> }}
      >
        {children || ''}
      </ReactMarkdown>
    </div>
  );
}
