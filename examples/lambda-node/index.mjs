// A Node.js Lambda handler (ES module), run unmodified by Gust's nodejs20.x
// runtime. It answers direct invocations and function-URL requests.
export const handler = async (event, context) => {
  const name = event?.queryStringParameters?.name ?? event?.name ?? 'world';
  console.log(`greeting ${name}; ${context.getRemainingTimeInMillis()} ms left`);
  const body = { message: `Hello, ${name}!`, requestId: context.awsRequestId };
  if (event?.requestContext?.http) {
    return { statusCode: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
  }
  return body;
};
