# CPack pre-build script (CPACK_PRE_BUILD_SCRIPTS): gzip -9n the man pages in the staging
# tree, as Fedora's brp-compress would (Debian's copy of it fails under dash).
file(GLOB_RECURSE pages
     "${CPACK_TEMPORARY_INSTALL_DIRECTORY}${CPACK_PACKAGING_INSTALL_PREFIX}/share/man/man*/*")
foreach(page IN LISTS pages)
  if(NOT page MATCHES "\\.gz$" AND NOT IS_SYMLINK "${page}")
    execute_process(COMMAND gzip -9nf "${page}" RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "gzip ${page} failed")
    endif()
  endif()
endforeach()
